{#-
    is_bot_user_agent(user_agent): true for crawlers, scripts and headless browsers. A pattern list, not a
    verdict: extend it (var `bot_user_agent_pattern`) when your traffic shows other bots.
-#}
{% macro is_bot_user_agent(user_agent) -%}
    coalesce({{ regex_matches('lower(' ~ user_agent ~ ')', "'" ~ var('bot_user_agent_pattern',
        '.*(bot|crawl|spider|slurp|scrapy|curl/|wget|python-requests|httpclient|headless|phantomjs).*') ~ "'") }},
        false)
{%- endmacro %}

{#-
    is_machine_open_user_agent(user_agent): opens fetched by a machine rather than read by a person: Apple
    Mail Privacy Protection's proxy, image proxies and security link scanners.
-#}
{% macro is_machine_open_user_agent(user_agent) -%}
    coalesce({{ regex_matches('lower(' ~ user_agent ~ ')', "'" ~ var('machine_open_user_agent_pattern',
        '.*(privacy protection|applemailproxy|imageproxy|scanner|security-scan|safelinks|barracuda).*') ~ "'") }},
        false)
{%- endmacro %}
