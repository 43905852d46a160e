"""The restricted metadata_condition evaluator (reference 3.3)."""

from __future__ import annotations

import pytest

from glancesync.condition import (
    Condition,
    ConditionError,
    ConditionEvalError,
    compile_condition,
)
from glancesync.image import Image

EXAMPLE_12 = "image.is_public and image.user_properties.get('type') == 'baseimage'"
DEFAULT_RULE = (
    "image.is_public and (not metadata_set or metadata_set.intersection(image.user_properties))"
)


def make_image(**changes) -> Image:
    fields = dict(
        name="img01",
        id="001",
        region="Valladolid",
        owner="tenant1id",
        is_public=True,
        checksum="c01",
        size=10485760,
        status="active",
        user_properties={"type": "baseimage", "nid": "12"},
    )
    fields.update(changes)
    return Image(**fields)


def evaluate(text: str, image: Image | None = None, metadata_set=frozenset()) -> bool:
    return compile_condition(text).evaluate(image or make_image(), frozenset(metadata_set))


# --- accepted constructs ---------------------------------------------------------------


def test_compile_returns_condition_with_text():
    condition = compile_condition(EXAMPLE_12)
    assert isinstance(condition, Condition)
    assert condition.text == EXAMPLE_12


@pytest.mark.parametrize(
    ("props", "public", "expected"),
    [
        ({"type": "baseimage"}, True, True),
        ({"type": "baseimage"}, False, False),
        ({"type": "app"}, True, False),
        ({}, True, False),
    ],
)
def test_worked_example_condition(props, public, expected):
    image = make_image(user_properties=props, is_public=public)
    assert evaluate(EXAMPLE_12, image) is expected


def test_metadata_set_intersection_uses_dict_keys():
    text = "metadata_set.intersection(image.user_properties)"
    assert evaluate(text, metadata_set={"nid", "other"}) is True
    assert evaluate(text, metadata_set={"other"}) is False
    assert evaluate(text, metadata_set=set()) is False


@pytest.mark.parametrize(
    ("props", "public", "metadata_set", "expected"),
    [
        ({"nid": "1"}, True, {"nid"}, True),
        ({"x": "1"}, True, {"nid"}, False),
        ({"x": "1"}, True, set(), True),
        ({"nid": "1"}, False, {"nid"}, False),
    ],
)
def test_default_rule_as_condition(props, public, metadata_set, expected):
    image = make_image(user_properties=props, is_public=public)
    assert evaluate(DEFAULT_RULE, image, metadata_set) is expected


def test_readme_multiline_condition_with_backslash():
    text = (
        "image.is_public and\\\n('nid' in image.user_properties or 'type' in image.user_properties)"
    )
    assert evaluate(text, make_image(user_properties={"nid": "1"})) is True
    assert evaluate(text, make_image(user_properties={"other": "1"})) is False


def test_backslash_continuation_keeps_tokens_apart():
    assert evaluate("image.is_public\\\nand True") is True
    assert evaluate("image.is_public \\  \n and True") is True


def test_line_breaks_count_as_spaces():
    assert evaluate("image.is_public\nand\r\nimage.name == 'img01'") is True


def test_comment_ends_at_its_line():
    text = "image.is_public  # public\n# and typed\nand image.user_properties['type'] == 'x'"
    assert evaluate(text) is False  # type is 'baseimage'
    assert evaluate(text, make_image(user_properties={"type": "x"})) is True


def test_hash_inside_a_string_is_not_a_comment():
    assert evaluate("image.name == 'a#b' or\nimage.name == 'c'", make_image(name="a#b")) is True
    assert evaluate("image.name == 'a#b' or\nimage.name == 'c'", make_image(name="a")) is False


def test_comment_after_a_backslash_continuation():
    text = "image.is_public and \\\n  image.size > 0  # big enough\n  and image.name == 'z'"
    assert evaluate(text) is False
    assert evaluate(text, make_image(name="z")) is True


def test_only_comments_is_an_empty_condition():
    with pytest.raises(ConditionError, match="empty"):
        compile_condition("# nothing here\n  # nor here")


def test_an_unbalanced_parenthesis_is_still_a_syntax_error():
    with pytest.raises(ConditionError, match="syntax error"):
        compile_condition("True )")
    assert evaluate("True # )") is True


def test_leading_and_trailing_whitespace_ignored():
    assert evaluate("   True  \n") is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("True", True),
        ("False", False),
        ("None", False),
        ("1", True),
        ("0", False),
        ("-1 < 0", True),
        ("+2.5 > 2", True),
        ("''", False),
        ("'x'", True),
        ("()", False),
        ("[]", False),
        ("(1, 2)", True),
        ("image.name in ('img01', 'img02')", True),
        ("image.name in ['img02']", False),
        ("image.name not in {'img02', 'img03'}", True),
        ("image.size > 0", True),
        ("0 < image.size <= 10485760", True),
        ("0 < image.size < 10", False),
        ("image.owner == 'tenant1id' != image.id", True),
        ("image.checksum is None", False),
        ("image.checksum is not None", True),
        ("image.status == 'active' and image.region == 'Valladolid'", True),
        ("image.id == '001'", True),
        ("image.user_properties['nid'] == '12'", True),
        ("image.user_properties.get('missing') is None", True),
        ("image.user_properties.get('missing', 'd') == 'd'", True),
        ("image.name[0] == 'i'", True),
        ("not image.is_public", False),
        ("not not image.is_public", True),
        ("image.user_properties.get('type', None) == 'baseimages'", False),
        ("((1, 2), [3]) == ((1, 2), [3])", True),
    ],
)
def test_allowed_constructs(text, expected):
    assert evaluate(text) is expected


def test_and_or_short_circuit():
    # The right operand would fail (missing key) if evaluated.
    assert evaluate("False and image.user_properties['missing']") is False
    assert evaluate("True or image.user_properties['missing']") is True
    with pytest.raises(ConditionEvalError):
        evaluate("True and image.user_properties['missing']")


def test_boolean_operators_return_operand_truth():
    assert evaluate("image.user_properties.get('missing') or image.name") is True
    assert evaluate("image.name and ''") is False


def test_comparison_chain_stops_at_first_false():
    assert evaluate("1 > 2 < image.user_properties['missing']") is False


def test_evaluation_is_repeatable_and_independent():
    condition = compile_condition("image.name in ['a', 'img01']")
    assert condition.evaluate(make_image(), frozenset()) is True
    assert condition.evaluate(make_image(name="b"), frozenset()) is False
    assert condition.evaluate(make_image(), frozenset()) is True


def test_kernel_id_holds_names():
    image = make_image(user_properties={"kernel_id": "kernel-img"})
    assert evaluate("image.user_properties.get('kernel_id') == 'kernel-img'", image)


# --- rejected constructs ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("len(image.name)", "function call 'len' is not allowed"),
        ("__import__('os')", "function call '__import__' is not allowed"),
        ("image.name.upper()", "method 'upper' is not allowed"),
        ("image.user_properties.keys()", "method 'keys' is not allowed"),
        ("image.user_properties.get", "attribute 'get' is not allowed"),
        ("os", "name 'os' is not allowed"),
        ("x == 1", "name 'x' is not allowed"),
        ("image.__class__", "attribute '__class__' is not allowed"),
        ("image.__dict__", "attribute '__dict__' is not allowed"),
        ("image.raw", "attribute 'raw' is not allowed"),
        ("image.disk_format", "attribute 'disk_format' is not allowed"),
        ("image.copy", "attribute 'copy' is not allowed"),
        ("metadata_set.__class__", "attribute '__class__' is not allowed"),
        ("image.name.__class__", "attribute '__class__' is not allowed"),
        ("(lambda: 1)", "lambda is not allowed"),
        ("[x for x in metadata_set]", "list comprehension is not allowed"),
        ("{x for x in metadata_set}", "set comprehension is not allowed"),
        ("{x: 1 for x in metadata_set}", "dict comprehension is not allowed"),
        ("any(x for x in metadata_set)", "function call 'any' is not allowed"),
        ("(x for x in metadata_set)", "generator expression is not allowed"),
        ("1 if image.is_public else 0", "conditional expression is not allowed"),
        ("image.size + 1 > 0", "arithmetic operator '+' is not allowed"),
        ("image.size * 2", "arithmetic operator '*' is not allowed"),
        ("-image.size", "arithmetic operator '-' is not allowed"),
        ("~1", "arithmetic operator '~' is not allowed"),
        ("metadata_set | {'a'}", "arithmetic operator '|' is not allowed"),
        ("f'{image.name}' == 'x'", "f-string is not allowed"),
        ("(x := 1)", "assignment expression (:=) is not allowed"),
        ("[*metadata_set]", "starred expression is not allowed"),
        ("image.user_properties.get(*metadata_set)", "starred expression is not allowed"),
        ("image.name[1:]", "slice is not allowed"),
        ("image.name[::2]", "slice is not allowed"),
        ("{'a': 1}", "dict display is not allowed"),
        ("b'x'", "bytes literal is not allowed"),
        ("...", "Ellipsis is not allowed"),
        ("[image.name]", "only literals are allowed inside tuple, list and set displays"),
        ("image.user_properties.get()", "method 'get' takes 1 or 2 arguments"),
        ("image.user_properties.get(1, 2, 3)", "method 'get' takes 1 or 2 arguments"),
        ("metadata_set.intersection()", "method 'intersection' takes 1 argument"),
        ("image.user_properties.get(key='a')", "keyword arguments are not allowed in 'get'"),
        ("image.name()", "method 'name' is not allowed"),
        ("(1)(2)", "call is not allowed"),
    ],
)
def test_rejected_constructs(text, message):
    with pytest.raises(ConditionError) as info:
        compile_condition(text)
    assert str(info.value) == message


def test_import_is_rejected_and_nothing_runs(tmp_path):
    marker = tmp_path / "x"
    with pytest.raises(ConditionError) as info:
        compile_condition(f"__import__('os').system('touch {marker}')")
    assert "'__import__' is not allowed" in str(info.value)
    assert not marker.exists()


def test_dunder_escape_chains_rejected():
    with pytest.raises(ConditionError):
        compile_condition("image.__class__.__mro__[1].__subclasses__()")
    with pytest.raises(ConditionError):
        compile_condition("().__class__.__bases__[0]")


@pytest.mark.parametrize("text", ["", "   ", "\n", "image.", "(", "a b", "True\\", "1 ==", "\x00"])
def test_syntax_errors(text):
    with pytest.raises(ConditionError):
        compile_condition(text)


def test_syntax_error_message_says_so():
    with pytest.raises(ConditionError, match="^syntax error: "):
        compile_condition("image.name ==")


def test_statements_are_syntax_errors():
    with pytest.raises(ConditionError, match="syntax error"):
        compile_condition("import os")


def test_deep_nesting_is_a_condition_error():
    for text in [
        "(" * 250 + "True" + ")" * 250,
        "not " * 5000 + "True",
        "image.user_properties" + "['a']" * 5000,
        "[" * 150 + "]" * 150,
        "-" * 10000 + "1",
    ]:
        with pytest.raises(ConditionError):
            compile_condition(text)


def test_moderate_nesting_is_fine():
    assert evaluate("not " * 50 + "True") is True
    assert evaluate("(" * 50 + "True" + ")" * 50) is True


def test_huge_flat_text_is_fine():
    text = " and ".join(["image.is_public"] * 20000)
    assert evaluate(text) is True
    assert evaluate("image.name in (" + ", ".join(f"'n{i}'" for i in range(20000)) + ")") is False


# --- evaluation errors (reference 3.3) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("image.user_properties['missing']", "key 'missing' not found"),
        ("image.size < 'x'", "'<' not supported between instances of 'int' and 'str'"),
        ("image.name.get('a')", "get() needs a dict, not str"),
        ("image.user_properties.intersection(metadata_set)", "intersection() needs a set"),
        ("metadata_set.intersection(image.size)", "'int' object is not iterable"),
        ("image.name[100]", "index out of range"),
        ("image.user_properties[[1]]", "unhashable type: 'list'"),
        ("{[1]}", "unhashable type: 'list'"),
        ("1 in image.size", "not iterable"),
        ("metadata_set[0]", "not subscriptable"),
    ],
)
def test_runtime_errors_become_condition_eval_error(text, reason):
    condition = compile_condition(text)
    with pytest.raises(ConditionEvalError) as info:
        condition.evaluate(make_image(), frozenset({"nid"}))
    assert reason in str(info.value)
    assert info.value.reason == str(info.value)


def test_image_without_fields_is_an_eval_error():
    condition = compile_condition("image.name == 'x'")
    with pytest.raises(ConditionEvalError):
        condition.evaluate(object(), frozenset())
