{% macro ml_training_windows() %}
    {#- The label windows the training set is built for, longest first: the main window (var
        `ml_horizon_days`, `ml_cutoff_count` cutoffs) and, when var `ml_short_horizon_days` is above 0 (the
        default is 60), a shorter one (`ml_short_cutoff_count` cutoffs). Both share `ml_cutoff_spacing_days`.
        A short window's latest cutoff lies closer to the as-of date, so a model trained on it has seen the
        most recent behaviour (a recently connected ESP, say) that the main window's cutoffs predate. -#}
    {%- set main_days = var('ml_horizon_days', 90) | int -%}
    {%- set windows = [{'horizon_days': main_days, 'cutoff_count': var('ml_cutoff_count', 6) | int}] -%}
    {%- set short_days = var('ml_short_horizon_days', 60) | int -%}
    {#- A short window no shorter than the main one has nothing to add: it is left out (not an error, so
        that lowering ml_horizon_days alone does not require changing the short window's default). -#}
    {%- if short_days > 0 and short_days < main_days -%}
        {%- do windows.append({'horizon_days': short_days, 'cutoff_count': var('ml_short_cutoff_count', 6) | int}) -%}
    {%- endif -%}
    {{ return(windows) }}
{% endmacro %}
