"""Message templates: fields, validation at creation, literal rendering."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.errors import TemplateError
from dialer.policies.templates import (
    CUSTOMER_TEMPLATE_FIELDS,
    RENDERED_SUBJECT_MAX_CHARS,
    render,
    render_subject,
    template_fields,
    validate_subject,
    validate_template,
)

FIELD = "whatsapp_first_message"


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("Hello {{name}}", {"name"}),
        ("Hi {{ name }} {{surname}}, {{name}}", {"name", "surname"}),
        ("{{\tcustomer.city }}", {"customer.city"}),
        ("no placeholders, {single} braces", set()),
        ("{{ 1abc }} {{}}", set()),
    ],
)
def test_template_fields(text: str, fields: set[str]) -> None:
    assert template_fields(text) == fields


@pytest.mark.parametrize(
    "text",
    [
        "Hello {{name}}, we call from {{ phone }}",
        "plain text",
        "JSON-ish {braces} and a lone }} are text",
        "{{email}}{{customer_id}}",
    ],
)
def test_valid_templates_pass(text: str) -> None:
    validate_template(FIELD, text, CUSTOMER_TEMPLATE_FIELDS)


def test_unknown_placeholder_names_the_field_and_lists_known() -> None:
    with pytest.raises(TemplateError) as info:
        validate_template(FIELD, "Hi {{ nickname }}", CUSTOMER_TEMPLATE_FIELDS)
    assert info.value.field == FIELD
    assert info.value.reason == (
        "unknown placeholder {{nickname}}; known: customer_id, email, name, phone, surname"
    )


def test_several_unknown_placeholders_are_all_reported() -> None:
    with pytest.raises(TemplateError, match=r"placeholders \{\{a\}\}, \{\{b\}\}"):
        validate_template(FIELD, "{{a}} {{b}} {{a}} {{name}}", CUSTOMER_TEMPLATE_FIELDS)


@pytest.mark.parametrize(
    ("text", "reason_part"),
    [
        ("Hello {{name", "unclosed '{{' at position 6"),
        ("Hello {{name}} and {{", "unclosed '{{' at position 19"),
        ("Hi {{ 1abc }}", "malformed placeholder {{ 1abc }}"),
        ("Hi {{}}", "malformed placeholder {{}}"),
        ("Hi {{{name}}}", "malformed placeholder {{{name}}"),
        ("Hi {{ first name }}", "malformed placeholder"),
        ("Hi {{name.__class__()}}", "malformed placeholder"),
    ],
)
def test_malformed_placeholders_are_rejected(text: str, reason_part: str) -> None:
    with pytest.raises(TemplateError) as info:
        validate_template(FIELD, text, CUSTOMER_TEMPLATE_FIELDS | {"first"})
    assert info.value.field == FIELD
    assert reason_part in info.value.reason


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("Hello {{name}}!", {"name": "Ada"}, "Hello Ada!"),
        ("Hello {{ name }} {{surname}}", {"name": "Ada", "surname": None}, "Hello Ada "),
        ("Hello {{name}}", {}, "Hello "),
        ("{{name}}", {"name": "{{surname}}"}, "{{surname}}"),
        ("{{name}}", {"name": "{0.__class__}"}, "{0.__class__}"),
        ("{a} {{name}} {b}", {"name": "x"}, "{a} x {b}"),
        ("{{name}}/{{name}}", {"name": "n", "surname": "s"}, "n/n"),
    ],
)
def test_render(text: str, values: dict[str, str | None], expected: str) -> None:
    assert render(text, values) == expected


def test_value_is_not_re_expanded() -> None:
    assert render("{{name}} {{surname}}", {"name": "{{surname}}", "surname": "X"}) == (
        "{{surname}} X"
    )


# Literal text without braces, interleaved with known placeholders.
literal_st = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=10)
placeholder_st = st.tuples(
    st.sampled_from(sorted(CUSTOMER_TEMPLATE_FIELDS)),
    st.sampled_from(["", " ", "  "]),
).map(lambda pair: "{{" + pair[1] + pair[0] + pair[1] + "}}")
value_st = st.one_of(
    st.none(), st.text(alphabet=st.characters(blacklist_characters="{"), max_size=8)
)


@given(
    st.lists(st.tuples(literal_st, placeholder_st), max_size=6),
    literal_st,
    st.dictionaries(st.sampled_from(sorted(CUSTOMER_TEMPLATE_FIELDS)), value_st),
)
def test_rendering_known_placeholders_leaves_no_braces(
    parts: list[tuple[str, str]], tail: str, values: dict[str, str | None]
) -> None:
    text = "".join(literal + placeholder for literal, placeholder in parts) + tail
    validate_template(FIELD, text, CUSTOMER_TEMPLATE_FIELDS)
    rendered = render(text, values)
    assert "{{" not in rendered
    assert template_fields(text) <= CUSTOMER_TEMPLATE_FIELDS
    for literal, _ in parts:
        assert literal in rendered


# --------------------------------------------------------------------------- e-mail subject


@pytest.mark.parametrize(
    "subject",
    ["Hi\r\nBcc: all@example.org", "Hi\nthere", "Hi\rthere", "Hi\u2028there", "x" * 201],
)
def test_a_subject_with_a_line_break_or_too_long_is_refused(subject: str) -> None:
    with pytest.raises(TemplateError) as raised:
        validate_subject("email_subject", subject, {"name"})
    assert raised.value.field == "email_subject"


def test_a_subject_follows_the_template_rules() -> None:
    validate_subject("email_subject", "{{ name }}, your appointment", {"name"})
    with pytest.raises(TemplateError, match="unknown placeholder"):
        validate_subject("email_subject", "{{plan}}", {"name"})


def test_a_rendered_subject_stays_one_bounded_line_whatever_the_values() -> None:
    rendered = render_subject("Hello {{name}}", {"name": "Ann\r\nBcc: all@example.org"})
    assert rendered == "Hello Ann Bcc: all@example.org"
    assert len(render_subject("{{name}}", {"name": "y" * 5000})) == RENDERED_SUBJECT_MAX_CHARS
    assert render_subject("Hi {{x}}", {"x": "{{name}}"}) == "Hi {{name}}"  # never expanded
