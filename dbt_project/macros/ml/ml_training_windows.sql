{% macro ml_training_windows() %}
    {#- The label windows the training set is built for, longest first: the main window (var
        `ml_horizon_days`, `ml_cutoff_count` cutoffs) and, when var `ml_short_horizon_days` is above 0, a
        shorter one (`ml_short_cutoff_count` cutoffs). Both share `ml_cutoff_spacing_days`. A short window's
        latest cutoff lies closer to the as-of date, so a model trained on it has seen the most recent
        behaviour (a recently connected ESP, say) that the main window's cutoffs predate. -#}
    {%- set main_days = var('ml_horizon_days', 90) | int -%}
    {%- set windows = [{'horizon_days': main_days, 'cutoff_count': var('ml_cutoff_count', 6) | int}] -%}
    {%- set short_days = var('ml_short_horizon_days', 0) | int -%}
    {%- if short_days > 0 -%}
        {%- if short_days >= main_days -%}
            {{ exceptions.raise_compiler_error(
                "var ml_short_horizon_days (" ~ short_days ~ ") must be shorter than ml_horizon_days ("
                ~ main_days ~ "), or 0 for no short window"
            ) }}
        {%- endif -%}
        {%- do windows.append({'horizon_days': short_days, 'cutoff_count': var('ml_short_cutoff_count', 24) | int}) -%}
    {%- endif -%}
    {{ return(windows) }}
{% endmacro %}
