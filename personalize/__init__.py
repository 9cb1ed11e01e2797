"""Command line and shared settings of the email-personalization warehouse."""
