"""Stand-in for dbt's `adapter` object in sqlfluff's jinja templater (see dbt.py beside this file).

`adapter.dispatch(name)` returns a function that renders a plain function call `name(args)`, which is
enough for layout checks of the models that use our dispatched macros.
"""


def _render(value):
    if isinstance(value, list | tuple):
        return ", ".join(_render(item) for item in value)
    return str(value)


# Dispatched macros that render a whole select (from the relation in their first argument), not an expression.
SELECT_MACROS = {"latest_per_partition", "repeated_key_digests", "rows_where"}
# Dispatched macros that render keywords rather than a call.
KEYWORD_MACROS = {"not_materialized": "not materialized", "materialized_hint": "materialized"}


def dispatch(macro_name, macro_namespace=None):
    def call(*args, **kwargs):
        if macro_name in KEYWORD_MACROS:
            return KEYWORD_MACROS[macro_name]
        if macro_name in SELECT_MACROS:
            return f"select * from {args[0]}"
        return f"{macro_name}({', '.join(_render(arg) for arg in args)})"

    return call


def quote(identifier):
    return f'"{identifier}"'
