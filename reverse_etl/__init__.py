"""Reverse ETL: sync the warehouse audience to email service providers."""
