{#-
    fx_rates_to_reporting(): a query giving, per accepted currency, the factor that converts an amount in
    it into the reporting currency (var `reporting_currency`), from the fx_rates seed. Models join it on
    currency_code; a currency with no row is unknown.
-#}
{% macro fx_rates_to_reporting() -%}
    select
        fx_rates.currency_code,
        fx_rates.usd_per_unit / reporting_currency.usd_per_unit as fx_rate_to_reporting
    from {{ ref('fx_rates') }} as fx_rates
    cross join (
        select reporting.usd_per_unit
        from {{ ref('fx_rates') }} as reporting
        where reporting.currency_code = '{{ var("reporting_currency") }}'
    ) as reporting_currency
{%- endmacro %}
