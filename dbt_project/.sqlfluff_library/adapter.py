"""Stand-in for dbt's `adapter` object in sqlfluff's jinja templater (see dbt.py beside this file).

`adapter.dispatch(name)` returns a function that renders a plain function call `name(args)`, which is
enough for layout checks of the models that use our dispatched macros.
"""


def _render(value):
    if isinstance(value, list | tuple):
        return ", ".join(_render(item) for item in value)
    return str(value)


def dispatch(macro_name, macro_namespace=None):
    def call(*args, **kwargs):
        return f"{macro_name}({', '.join(_render(arg) for arg in args)})"

    return call


def quote(identifier):
    return f'"{identifier}"'
