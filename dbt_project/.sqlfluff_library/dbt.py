"""Stand-ins for dbt's cross-database macros so that sqlfluff's jinja templater can render models.

sqlfluff-templater-dbt does not support our pinned dbt-core/sqlfluff pair, so `make lint` renders models
with the plain jinja templater; these return representative DuckDB SQL for layout checks only.
"""


def type_bigint():
    return "bigint"


def type_string():
    return "varchar"


def type_float():
    return "double"


def type_numeric():
    return "numeric(28, 6)"


def type_timestamp():
    return "timestamp"


def type_int():
    return "integer"


def type_boolean():
    return "boolean"


def hash(expression):  # noqa: A001 - mirrors dbt.hash
    return f"md5({expression})"


def concat(fields):
    return f"concat({', '.join(fields)})"


def current_timestamp():
    return "current_timestamp"


def dateadd(datepart, interval, from_date_or_timestamp):
    return f"({from_date_or_timestamp} + interval ({interval}) {datepart})"


def datediff(first_date, second_date, datepart):
    return f"date_diff('{datepart}', {first_date}, {second_date})"


def date_trunc(datepart, date):
    return f"date_trunc('{datepart}', {date})"


def safe_cast(field, type):  # noqa: A002 - mirrors dbt.safe_cast
    return f"try_cast({field} as {type})"


def listagg(measure, delimiter_text="','", order_by_clause=None, limit_num=None):
    order_by = f" {order_by_clause}" if order_by_clause else ""
    return f"string_agg({measure}, {delimiter_text}{order_by})"


def generate_series(upper_bound):
    return f"select generated_number from generate_series(1, {upper_bound}) as series (generated_number)"


def split_part(string_text, delimiter_text, part_number):
    return f"split_part({string_text}, {delimiter_text}, {part_number})"


def right(string_text, length_expression):
    return f"right({string_text}, {length_expression})"


def length(expression):
    return f"length({expression})"


def position(substring_text, string_text):
    return f"position({substring_text} in {string_text})"
