"""The CSV backup format of reference 8.2."""

from __future__ import annotations

import contextlib
import os
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glancesync.backends import csvfile
from glancesync.errors import ConfigError
from glancesync.image import Image

CANONICAL = (
    "Valladolid,image01,001,active,1073741824,c1,tenant1id,True,"
    "\"{'type': 'ngimages', 'nid': 1}\"\n"
    "Valladolid,image02,002,active,1073741834,c2,tenant1id,False,{}\n"
    'Valladolid,"a, ""quoted"" name",003,queued,0,,,True,"{\'k\': \'v,w\'}"\n'
)

NINE = ("region", "name", "id", "status", "size", "checksum", "owner", "is_public")


def nine(image: Image) -> tuple:
    return tuple(getattr(image, f) for f in NINE) + (image.user_properties,)


def test_record_is_the_nine_fields():
    image = Image(name="n", id="i", region="R", user_properties={"a": 1}, disk_format="qcow2")
    assert csvfile.record(image) == nine(image)


def write(tmp_path, name: str, data: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return str(path)


def load_error(tmp_path, text: str, region: str = "Burgos") -> str:
    path = write(tmp_path, f"backup_{region}.csv", text)
    with pytest.raises(ConfigError) as info:
        csvfile.read_backup(path)
    assert path in str(info.value)
    return str(info.value)


def test_reads_the_nine_fields(tmp_path):
    region, images = csvfile.read_backup(write(tmp_path, "backup_Valladolid.csv", CANONICAL))
    assert region == "Valladolid"
    first, second, third = images
    assert first == Image(
        name="image01",
        id="001",
        region="Valladolid",
        owner="tenant1id",
        is_public=True,
        checksum="c1",
        size=1073741824,
        status="active",
        user_properties={"type": "ngimages", "nid": 1},
    )
    assert second.user_properties == {} and second.is_public is False
    assert third.name == 'a, "quoted" name'
    assert (third.checksum, third.owner, third.status) == ("", "", "queued")
    assert third.user_properties == {"k": "v,w"}


def test_canonical_file_is_rewritten_byte_identical(tmp_path):
    source = write(tmp_path, "backup_Valladolid.csv", CANONICAL)
    region, images = csvfile.read_backup(source)
    out = tmp_path / "out" / "backup_Valladolid.csv"
    out.parent.mkdir()
    csvfile.write_backup(str(out), region, images)
    assert out.read_bytes() == CANONICAL.encode()


def test_lenient_input_is_accepted(tmp_path):
    text = (
        "\r\nBurgos,img,1,active,10,,,TRUE,\"{u'type': u'baseimage'}\"\r\n\r\n"
        "Burgos,img2,2,active,10,,,false,\r\n"
    )
    _, images = csvfile.read_backup(write(tmp_path, "backup_Burgos.csv", text))
    assert [i.is_public for i in images] == [True, False]
    assert images[0].user_properties == {"type": "baseimage"}
    assert images[1].user_properties == {}


def test_empty_file_is_an_empty_region(tmp_path):
    assert csvfile.read_backup(write(tmp_path, "backup_other:Madrid.csv", "")) == (
        "other:Madrid",
        [],
    )


def test_region_of_file():
    assert csvfile.region_of_file("/x/backup_other:Madrid.csv") == "other:Madrid"
    with pytest.raises(ConfigError):
        csvfile.region_of_file("/x/Madrid.csv")
    with pytest.raises(ConfigError):
        csvfile.region_of_file("/x/backup_.csv")


@pytest.mark.parametrize(
    "line, problem",
    [
        ("Burgos,a,1,active,10,,,maybe,{}", "line 2: is_public must be True or False, not 'maybe'"),
        ("Madrid,a,1,active,10,,,True,{}", "line 2: region is 'Madrid'"),
        ("Burgos,a,1,active,ten,,,True,{}", "line 2: size must be a whole number"),
        ("Burgos,a,1,active,-1,,,True,{}", "line 2: size must be a whole number"),
        ("Burgos,a,1,active,10,,,True", "line 2: expected 9 fields, found 8"),
        ("Burgos,a,1,active,10,,,True,{},x", "line 2: expected 9 fields, found 10"),
        ("Burgos,a,1,active,10,,,True,\"['a']\"", "line 2: user_properties must be a dict"),
        ("Burgos,a,1,active,10,,,True,{1: 2}", "line 2: user_properties keys must be strings"),
        ("Burgos,a,1,active,10,,,True,__import__('os')", "line 2: user_properties is not"),
        ("Burgos,a,1,active,10,,,True,{'a': 1e999}", "line 2: user_properties cannot be"),
    ],
)
def test_load_errors_name_file_and_line(tmp_path, line, problem):
    good = "Burgos,ok,0,active,1,,,True,{}\n"
    assert problem in load_error(tmp_path, good + line + "\n")


def test_line_numbers_count_physical_lines(tmp_path):
    text = 'Burgos,"multi\nline",1,active,1,,,True,{}\n\nBurgos,a,2,active,1,,,nope,{}\n'
    assert "line 4:" in load_error(tmp_path, text)


def test_bad_encoding_is_a_config_error(tmp_path):
    assert "UTF-8" in load_error(tmp_path, b"Burgos,\xff,1,active,1,,,True,{}\n")  # type: ignore


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        csvfile.read_backup(str(tmp_path / "backup_Nowhere.csv"))


def test_parse_and_format_line():
    line = "R,n,i,active,5,c,o,True,\"{'a': 1, 'b': 2}\""
    image = csvfile.parse_line(line, "R")
    assert csvfile.format_line(image) == line + "\n"
    with pytest.raises(ConfigError, match="line 7"):
        csvfile.parse_line("R,n", "R", lineno=7)


def test_write_is_atomic_and_keeps_no_temporary(tmp_path):
    path = tmp_path / "backup_R.csv"
    csvfile.write_backup(str(path), "R", [Image(name="a", id="1", region="R")])
    csvfile.write_backup(str(path), "R", [])
    assert path.read_bytes() == b""
    assert os.listdir(tmp_path) == ["backup_R.csv"]


def test_read_folder_only_takes_backup_files(tmp_path):
    write(tmp_path, "backup_B.csv", "B,x,1,active,1,,,True,{}\n")
    write(tmp_path, "backup_A.csv", "")
    write(tmp_path, "config", "[main]\n")
    assert list(csvfile.read_folder(str(tmp_path))) == ["A", "B"]


# ---------------------------------------------------------------- properties

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
prop_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
images = st.builds(
    Image,
    name=text,
    id=text,
    status=text,
    size=st.integers(min_value=0, max_value=2**64),
    checksum=text,
    owner=text,
    is_public=st.booleans(),
    user_properties=st.dictionaries(text, prop_values, max_size=4),
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(images, max_size=5))
def test_written_backups_load_back_unchanged(tmp_path, written):
    path = str(tmp_path / "backup_other:Madrid.csv")
    csvfile.write_backup(path, "other:Madrid", written)
    region, loaded = csvfile.read_backup(path)
    assert region == "other:Madrid"
    expected = [nine(image.copy(region="other:Madrid")) for image in written]
    assert [nine(image) for image in loaded] == expected
    with open(path, "rb") as handle:
        assert csvfile.dump_backup(region, loaded).encode() == handle.read()


csv_ish = st.text(alphabet=string.printable + "{}[]'\"\u00e9\x00\x0c", max_size=300)


@settings(max_examples=500, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(csv_ish, st.binary(max_size=200)))
def test_only_config_errors_escape_the_loader(tmp_path, data):
    path = write(tmp_path, "backup_Burgos.csv", data)
    with contextlib.suppress(ConfigError):
        csvfile.read_backup(path)


@settings(max_examples=300)
@given(
    st.lists(
        st.sampled_from(
            [
                "Burgos",
                "Madrid",
                "",
                "x",
                "-3",
                "12",
                "True",
                "fAlSe",
                "{}",
                "{'a': (1,)}",
                "{'a'",
                "[1]",
                '"',
                ",",
                "\r",
                "\n",
                "u'x'",
                "{u'k': u'v'}",
                "1e999",
                "{'a': 1j}",
            ]
        ),
        max_size=11,
    )
)
def test_only_config_errors_escape_parse_line(fields):
    with contextlib.suppress(ConfigError):
        csvfile.parse_line(",".join(fields), "Burgos")
