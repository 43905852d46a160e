"""The configuration loader (reference section 2)."""

from __future__ import annotations

import base64
import os
import textwrap

import pytest

from glancesync.config import (
    DEFAULT_IMAGES_DIR,
    find_config_file,
    load_config,
    parse_overrides,
    split_list,
)
from glancesync.config import reader as config_module
from glancesync.errors import ConfigError, UsageError
from glancesync.image import Image


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


WORKED_EXAMPLE = f"""
[main]
master_region = Valladolid

[master]
credential = user,{b64("secret")},http://ks:5000/v3,tenant1
metadata_set = nid, type

[other]
credential = user2,{b64("secret2")},http://ks2:5000/v3,tenant2
metadata_set = type
metadata_condition = image.is_public and image.user_properties.get('type') == 'baseimage'
"""

MASTER_ENV = {
    "OS_USERNAME": "envuser",
    "OS_PASSWORD": "envpass",
    "OS_AUTH_URL": "http://envks:5000/v3",
    "OS_TENANT_NAME": "envtenant",
    "OS_REGION_NAME": "EnvRegion",
}


def load(text: str = "", overrides=(), environ=None, path="/etc/test.conf"):
    return load_config(
        text=textwrap.dedent(text), path=path, overrides=overrides, environ=environ or {}
    )


def error_of(text: str = "", overrides=(), environ=None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(text, overrides, environ)
    assert "\n" not in str(info.value)
    return info.value


MINIMAL = f"""
[main]
master_region = Valladolid
[master]
credential = user,{b64("pw")},http://ks:5000/v3,tenant1
"""


# --- worked example and defaults -------------------------------------------------------


def test_worked_example():
    config = load(WORKED_EXAMPLE)
    assert config.main.master_region == "Valladolid"
    assert list(config.targets) == ["master", "other"]
    master, other = config.master, config.targets["other"]
    assert (
        master.connection.user,
        master.connection.password,
        master.connection.keystone_url,
        master.connection.tenant,
    ) == (
        "user",
        "secret",
        "http://ks:5000/v3",
        "tenant1",
    )
    assert master.metadata_set == {"nid", "type"}
    assert master.metadata_condition is None
    assert other.connection.password == "secret2"
    assert other.metadata_set == {"type"}
    image = Image(name="a", id="1", is_public=True, user_properties={"type": "baseimage"})
    assert other.metadata_condition.evaluate(image, other.metadata_set) is True
    assert config.warnings == []
    assert config.source == "/etc/test.conf"


def test_defaults_of_every_option():
    config = load(MINIMAL)
    main, master = config.main, config.master
    assert main.preferable_order == ()
    assert main.max_children == 1
    assert main.images_dir == DEFAULT_IMAGES_DIR
    assert master.connection.user_domain_name == master.connection.project_domain_name == "Default"
    assert master.forcesyncs == master.replace == master.rename == master.dontupdate == set()
    assert master.ignore_regions == master.obsolete_syncprops == ()
    assert master.metadata_condition is None
    assert master.metadata_set == frozenset()
    assert master.only_tenant_images is True
    assert master.support_obsolete_images is True
    assert master.list_images_timeout == 30
    assert master.tenant_id is None


def test_every_option_parsed():
    config = load(
        MINIMAL
        + textwrap.dedent(
            """
        user_domain_name = dom1
        project_domain_name = dom2
        forcesyncs = id1, id2
        replace = c1, any
        rename = c2
        dontupdate = c3,
        ignore_regions = R1 , R2
        metadata_set = nid , type,
        only_tenant_images = no
        support_obsolete_images = OFF
        obsolete_syncprops = a, b
        list_images_timeout = 60
        tenant_id = abc
        use_keystone_v3 = True
        """
        )
    )
    master = config.master
    assert (master.connection.user_domain_name, master.connection.project_domain_name) == (
        "dom1",
        "dom2",
    )
    assert master.forcesyncs == {"id1", "id2"}
    assert master.replace == {"c1", "any"}
    assert master.rename == {"c2"}
    assert master.dontupdate == {"c3"}
    assert master.ignore_regions == ("R1", "R2")
    assert master.metadata_set == {"nid", "type"}
    assert master.only_tenant_images is False
    assert master.support_obsolete_images is False
    assert master.obsolete_syncprops == ("a", "b")
    assert master.list_images_timeout == 60
    assert master.tenant_id == "abc"


def test_main_options():
    config = load(
        MINIMAL.replace(
            "master_region = Valladolid",
            "master_region = Valladolid\npreferable_order = master:Burgos, other:Madrid, Trento"
            "\nmax_children = 4\nimages_dir = /srv/images",
        )
    )
    assert config.main.preferable_order == ("Burgos", "other:Madrid", "Trento")
    assert config.main.max_children == 4
    assert config.main.images_dir == "/srv/images"


def test_split_list():
    assert split_list("nid , type,") == ("nid", "type")
    assert split_list("") == ()
    assert split_list(" , ,") == ()
    assert split_list("a,\n b") == ("a", "b")


@pytest.mark.parametrize("word", ["1", "yes", "TRUE", "On"])
def test_boolean_true(word):
    assert load(MINIMAL + f"only_tenant_images = {word}\n").master.only_tenant_images is True


@pytest.mark.parametrize("word", ["0", "no", "False", "OFF"])
def test_boolean_false(word):
    assert load(MINIMAL + f"only_tenant_images = {word}\n").master.only_tenant_images is False


@pytest.mark.parametrize("word", ["maybe", "", "2", "y"])
def test_boolean_invalid(word):
    error = error_of(MINIMAL + f"support_obsolete_images = {word}\n")
    assert (error.source, error.section, error.key) == (
        "/etc/test.conf",
        "master",
        "support_obsolete_images",
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("list_images_timeout", "0"),
        ("list_images_timeout", "-5"),
        ("list_images_timeout", "ten"),
        ("list_images_timeout", "1.5"),
        ("list_images_timeout", ""),
        ("list_images_timeout", "9" * 5000),
    ],
)
def test_bad_target_integers(key, value):
    error = error_of(MINIMAL + f"{key} = {value}\n")
    assert (error.section, error.key) == ("master", key)


@pytest.mark.parametrize("value", ["0", "-1", "x", "٣"])
def test_bad_max_children(value):
    error = error_of(MINIMAL.replace("[master]", f"max_children = {value}\n[master]"))
    assert str(error).startswith("/etc/test.conf: [main] max_children: ")


def test_spool_options():
    config = load(
        MINIMAL.replace("[master]", "spool_dir = /srv/spool\nspool_max_mb = 64\n[master]")
    )
    assert (config.main.spool_dir, config.main.spool_max_mb) == ("/srv/spool", 64)
    default = load(MINIMAL).main
    assert (default.spool_dir, default.spool_max_mb) == ("", 2048)


@pytest.mark.parametrize("value", ["0", "15", "x"])
def test_bad_spool_max_mb(value):
    error = error_of(MINIMAL.replace("[master]", f"spool_max_mb = {value}\n[master]"))
    assert str(error).startswith("/etc/test.conf: [main] spool_max_mb: ")


def test_use_keystone_v3_validated_but_ignored():
    assert load(MINIMAL + "use_keystone_v3 = False\n").master.connection.keystone_url.endswith(
        "/v3"
    )
    assert error_of(MINIMAL + "use_keystone_v3 = perhaps\n").key == "use_keystone_v3"


def test_multiline_values():
    config = load(MINIMAL + "metadata_set = nid,\n    type\n")
    assert config.master.metadata_set == {"nid", "type"}


def test_readme_multiline_condition():
    text = MINIMAL + (
        "metadata_condition = image.is_public and\\\n"
        "    ('nid' in image.user_properties or 'type' in image.user_properties)\n"
    )
    condition = load(text).master.metadata_condition
    image = Image(name="a", id="1", is_public=True, user_properties={"nid": "1"})
    assert condition.evaluate(image, frozenset()) is True
    assert condition.evaluate(image.copy(user_properties={}), frozenset()) is False


def test_multiline_condition_without_backslash():
    text = MINIMAL + "metadata_condition = image.is_public\n    and image.name == 'a'\n"
    assert load(text).master.metadata_condition is not None


def _selects(config_text: str, **image_fields) -> bool:
    condition = load(MINIMAL + config_text).master.metadata_condition
    fields = {"name": "a", "id": "1", "is_public": True, **image_fields}
    return condition.evaluate(Image(**fields), frozenset())


def test_commented_multiline_condition_comments_end_at_their_line():
    # Today the '# Ubuntu only' comment swallows the rest: every public image is selected.
    text = (
        "metadata_condition = image.is_public  # public ones\n"
        "    # that are base images\n"
        "    and image.user_properties.get('type') == 'baseimage'\n"
    )
    assert _selects(text, user_properties={"type": "baseimage"}) is True
    assert _selects(text, user_properties={"type": "other"}) is False


def test_condition_string_may_hold_a_hash():
    # The '#' inside the string is no comment; the one after it is (today it hides 'or').
    text = (
        "metadata_condition = image.name == 'ubuntu#2'  # the LTS one\n"
        "    or image.name == 'debian'\n"
    )
    assert _selects(text, name="ubuntu#2") is True
    assert _selects(text, name="debian") is True
    assert _selects(text, name="ubuntu") is False


def test_uncommented_multiline_condition_keeps_newlines_in_strings():
    # Newlines are kept: this triple-quoted value spans two lines (today: one space).
    text = (
        "metadata_condition = image.is_public\n"
        "    and image.user_properties.get('motd') == '''Welcome\n"
        "    to FIWARE'''\n"
    )
    assert _selects(text, user_properties={"motd": "Welcome\nto FIWARE"}) is True
    assert _selects(text, user_properties={"motd": "Welcome to FIWARE"}) is False


def test_uncommented_multiline_condition_over_three_lines():
    text = (
        "metadata_condition = image.is_public\n"
        "    and image.name != 'b'\n"
        "    and 'nid' in image.user_properties\n"
    )
    assert _selects(text, user_properties={"nid": "1"}) is True
    assert _selects(text, user_properties={}) is False


# --- DEFAULT section -------------------------------------------------------------------


def test_default_values_reach_targets_and_main():
    text = f"""
    [DEFAULT]
    metadata_set = nid
    master_region = FromDefault
    max_children = 3
    [master]
    credential = u,{b64("p")},http://ks/v3,t
    [other]
    credential = u,{b64("p")},http://ks/v3,t
    metadata_set = type
    """
    config = load(text)
    assert config.main.master_region == "FromDefault"
    assert config.main.max_children == 3
    assert config.master.metadata_set == {"nid"}
    assert config.targets["other"].metadata_set == {"type"}
    assert config.warnings == []


def test_default_credential_for_every_target():
    text = f"""
    [main]
    master_region = R
    [DEFAULT]
    credential = u,{b64("p")},http://ks/v3,t
    [other]
    """
    config = load(text)
    assert config.targets["other"].connection.password == "p"
    assert config.master.connection.password == "p"


# --- unknown keys (reference 2.2) -----------------------------------------------------------------


def test_unknown_target_key_warns():
    config = load(MINIMAL + "metadatacondition = True\n")
    assert config.warnings == ["Unknown option metadatacondition in section [master]"]


def test_unknown_main_key_warns():
    text = MINIMAL.replace("[master]", "metadata_set = x\n[master]")
    assert load(text).warnings == ["Unknown option metadata_set in section [main]"]


def test_default_target_keys_never_warn_in_main():
    text = MINIMAL + "[DEFAULT]\nmetadata_set = nid\nforcesyncs = a\n"
    assert load(text).warnings == []


def test_unknown_default_key_warns_once():
    text = MINIMAL + "[other]\ncredential = a,,c,d\n[DEFAULT]\nbogus = 1\n"
    assert load(text).warnings == ["Unknown option bogus in section [DEFAULT]"]


def test_unknown_override_key_warns():
    config = load(MINIMAL, overrides=["master.bogus=1"])
    assert config.warnings == ["Unknown option bogus in section [master]"]


# --- credentials -----------------------------------------------------------------------


def test_rule1_plain_fields_win_over_credential():
    text = MINIMAL + "user = u1\npassword = plain,text\nkeystone_url = http://k/v3\ntenant = t1\n"
    master = load(text).master
    assert (
        master.connection.user,
        master.connection.password,
        master.connection.keystone_url,
        master.connection.tenant,
    ) == (
        "u1",
        "plain,text",
        "http://k/v3",
        "t1",
    )


def test_project_is_alias_of_tenant():
    text = """
    [main]
    master_region = R
    [other]
    user = u
    password = p
    keystone_url = http://k/v3
    project = proj
    """
    assert load(text, environ=MASTER_ENV).targets["other"].connection.tenant == "proj"


def test_rule2_partial_fields_fall_back_to_credential():
    master = load(MINIMAL + "user = someone\n").master
    assert master.connection.user == "user"


def test_credential_fields_stripped_and_password_with_commas():
    text = MINIMAL.replace(
        f"credential = user,{b64('pw')},http://ks:5000/v3,tenant1",
        f"credential =  user , {b64('a,b,c')} , http://ks:5000/v3 , tenant1 ",
    )
    master = load(text).master
    assert (master.connection.user, master.connection.password, master.connection.tenant) == (
        "user",
        "a,b,c",
        "tenant1",
    )


@pytest.mark.parametrize(
    "credential",
    ["u,p,k", "u,cA==,k,t,extra", "onlyone", "u,cA==,k,t,"],
)
def test_credential_wrong_field_count(credential):
    error = error_of(
        f"[main]\nmaster_region=R\n[other]\ncredential = {credential}\n", environ=MASTER_ENV
    )
    assert (error.section, error.key) == ("other", "credential")


@pytest.mark.parametrize("password", ["not base64!", "cA=", "cA", "c-A_", "wq", "cA==cA=="])
def test_credential_bad_base64(password):
    error = error_of(
        f"[main]\nmaster_region=R\n[other]\ncredential = u,{password},k,t\n", environ=MASTER_ENV
    )
    assert str(error) == (
        "/etc/test.conf: [other] credential: the password in credential is not valid base64"
    )


def test_rule4_non_master_needs_a_credential():
    error = error_of("[main]\nmaster_region=R\n[other]\nuser = u\n", environ=MASTER_ENV)
    assert error.section == "other"
    assert error.problem == (
        "A credential parameter is mandatory for each target "
        "(or the set: user, password, tenant, keystone_url)"
    )


def test_non_master_never_uses_environment():
    error = error_of("[main]\nmaster_region=R\n[other]\n", environ=MASTER_ENV)
    assert error.section == "other"


def test_rule3_master_from_environment():
    master = load("", environ=MASTER_ENV).master
    assert (
        master.connection.user,
        master.connection.password,
        master.connection.keystone_url,
        master.connection.tenant,
    ) == (
        "envuser",
        "envpass",
        "http://envks:5000/v3",
        "envtenant",
    )


def test_rule3_file_and_environment_mixed():
    text = "[master]\nuser = fileuser\nkeystone_url = http://file/v3\n"
    env = {"OS_PASSWORD": "envpw", "OS_PROJECT_NAME": "proj", "OS_REGION_NAME": "R"}
    master = load(text, environ=env).master
    assert (
        master.connection.user,
        master.connection.password,
        master.connection.keystone_url,
        master.connection.tenant,
    ) == (
        "fileuser",
        "envpw",
        "http://file/v3",
        "proj",
    )


def test_tenant_name_wins_over_project_name():
    env = dict(MASTER_ENV, OS_PROJECT_NAME="proj")
    assert load("", environ=env).master.connection.tenant == "envtenant"
    del env["OS_TENANT_NAME"]
    assert load("", environ=env).master.connection.tenant == "proj"


def test_file_credential_wins_over_environment():
    assert load(MINIMAL, environ=MASTER_ENV).master.connection.user == "user"


def test_domains_from_environment_for_master_only():
    env = dict(MASTER_ENV, OS_USER_DOMAIN_NAME="ud", OS_PROJECT_DOMAIN_NAME="pd")
    text = f"[other]\ncredential = u,{b64('p')},http://k/v3,t\n"
    config = load(text, environ=env)
    assert (
        config.master.connection.user_domain_name,
        config.master.connection.project_domain_name,
    ) == ("ud", "pd")
    other = config.targets["other"]
    assert (other.connection.user_domain_name, other.connection.project_domain_name) == (
        "Default",
        "Default",
    )
    assert (
        load("[master]\nuser_domain_name = f\n", environ=env).master.connection.user_domain_name
        == "f"
    )


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        (
            "OS_USERNAME",
            "A username for master target must be provided in configuration "
            "or OS_USERNAME must be defined",
        ),
        (
            "OS_PASSWORD",
            "A password for master target must be provided in configuration or OS_PASSWORD "
            "must be defined. In the configuration file, passwords must be encoded with base64",
        ),
        (
            "OS_AUTH_URL",
            "A keystone url for master target must be provided in configuration "
            "or OS_AUTH_URL must be defined.",
        ),
        (
            "OS_TENANT_NAME",
            "A tenant name for master target must be provided in configuration "
            "or OS_TENANT_NAME must be defined.",
        ),
    ],
)
def test_missing_master_credential_messages(missing, message):
    env = {k: v for k, v in MASTER_ENV.items() if k != missing}
    error = error_of("", environ=env)
    assert error.problem == message
    assert error.section == "master"
    assert str(error).endswith(message)


def test_blank_environment_value_counts_as_missing():
    error = error_of("", environ=dict(MASTER_ENV, OS_USERNAME=""))
    assert "A username for master target" in error.problem


# --- master region ---------------------------------------------------------------------


def test_master_region_from_environment():
    config = load(MINIMAL.replace("master_region = Valladolid", ""), environ=MASTER_ENV)
    assert config.main.master_region == "EnvRegion"


def test_file_master_region_wins_over_environment():
    assert load(MINIMAL, environ=MASTER_ENV).main.master_region == "Valladolid"


def test_missing_master_region_message():
    error = error_of(MINIMAL.replace("master_region = Valladolid", ""))
    assert str(error) == (
        "/etc/test.conf: [main] master_region: A master region must be set in the "
        "configuration or OS_REGION_NAME must be defined"
    )


# --- keystone v2.0 rewrite -------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://ks:5000/v2.0", "http://ks:5000/v2.0/"])
def test_keystone_v2_rewritten(url):
    config = load(MINIMAL.replace("http://ks:5000/v3", url))
    assert config.master.connection.keystone_url == "http://ks:5000/v3"
    assert config.warnings == [
        f"keystone_url {url} uses Keystone v2.0; using http://ks:5000/v3 instead"
    ]


def test_keystone_v2_from_environment_rewritten():
    env = dict(MASTER_ENV, OS_AUTH_URL="http://e:5000/v2.0")
    assert load("", environ=env).master.connection.keystone_url == "http://e:5000/v3"


def test_url_without_version_unchanged():
    config = load(MINIMAL.replace("http://ks:5000/v3", "http://ks:5000"))
    assert config.master.connection.keystone_url == "http://ks:5000"
    assert config.warnings == []


# --- targets ---------------------------------------------------------------------------


def test_target_name_with_colon_rejected():
    error = error_of(MINIMAL + "[bad:name]\n")
    assert error.section == "bad:name"
    assert error.source == "/etc/test.conf"


def test_implied_master_first_and_file_order():
    text = f"[zeta]\ncredential = u,{b64('p')},k,t\n[alpha]\ncredential = u,{b64('p')},k,t\n"
    config = load(text, environ=MASTER_ENV)
    assert list(config.targets) == ["master", "zeta", "alpha"]


def test_d9_no_file_mode_from_environment(monkeypatch, tmp_path):
    monkeypatch.setattr(config_module, "DEFAULT_CONFIG_PATH", str(tmp_path / "absent.conf"))
    config = load_config(environ=MASTER_ENV, overrides=["metadata_set=nid"])
    assert config.source == "defaults"
    assert list(config.targets) == ["master"]
    assert config.main.master_region == "EnvRegion"
    assert config.master.connection.user == "envuser"
    assert config.master.metadata_set == {"nid"}
    assert config.master.list_images_timeout == 30


def test_d9_no_file_missing_region_blames_environment(monkeypatch, tmp_path):
    monkeypatch.setattr(config_module, "DEFAULT_CONFIG_PATH", str(tmp_path / "absent.conf"))
    env = {k: v for k, v in MASTER_ENV.items() if k != "OS_REGION_NAME"}
    with pytest.raises(ConfigError) as info:
        load_config(environ=env)
    assert str(info.value).startswith("environment: [main] master_region: A master region")


# --- metadata_condition ----------------------------------------------------------------


def test_condition_error_names_file_section_and_construct():
    error = error_of(MINIMAL + "metadata_condition = len(image.name) > 0\n")
    assert str(error) == (
        "/etc/test.conf: [master] metadata_condition: function call 'len' is not allowed"
    )


def test_condition_checked_for_unused_targets_too():
    text = MINIMAL + f"[other]\ncredential = u,{b64('p')},k,t\nmetadata_condition = image.raw\n"
    assert error_of(text).section == "other"


def test_blank_condition_is_unset():
    assert load(MINIMAL + "metadata_condition =\n").master.metadata_condition is None


def test_false_condition():
    condition = load(MINIMAL + "metadata_condition = False\n").master.metadata_condition
    assert condition is not None
    assert condition.evaluate(Image(name="a", id="1", is_public=True), frozenset()) is False


# --- --config overrides (reference 2.6) -----------------------------------------------------------


def test_parse_overrides():
    assert parse_overrides(
        [
            "main.master_region=Spain2",
            'metadata_condition=image.name=="x"',
            "other.metadata_set = a , b",
            "DEFAULT.x=1",
            "a.b.c=d",
            "Key=",
        ]
    ) == [
        ("main", "master_region", "Spain2"),
        (None, "metadata_condition", 'image.name=="x"'),
        ("other", "metadata_set", "a , b"),
        (None, "x", "1"),
        ("a", "b.c", "d"),
        (None, "key", ""),
    ]


@pytest.mark.parametrize("item", ["Trento", "=value", " =x", "main.=x", ".key=x", ""])
def test_parse_overrides_usage_error(item):
    with pytest.raises(UsageError) as info:
        parse_overrides([item])
    assert str(info.value) == "config options must have the format key=value"


def test_load_config_propagates_usage_error():
    with pytest.raises(UsageError):
        load(MINIMAL, overrides=["Trento"])


def test_override_value_with_equals():
    config = load(MINIMAL, overrides=['metadata_condition=image.name=="name1"'])
    condition = config.master.metadata_condition
    assert condition.evaluate(Image(name="name1", id="1"), frozenset()) is True
    assert condition.evaluate(Image(name="name2", id="1"), frozenset()) is False


def test_override_section_key_wins_over_file():
    config = load(MINIMAL, overrides=["main.master_region=Spain2", "master.max_children=2"])
    assert config.main.master_region == "Spain2"


def test_bare_override_wins_over_file_section_and_reaches_main():
    text = MINIMAL + "metadata_set = nid\n"
    config = load(text, overrides=["metadata_set=type", "master_region=Other"])
    assert config.master.metadata_set == {"type"}
    assert config.main.master_region == "Other"
    assert config.warnings == []


def test_section_override_beats_bare_override():
    config = load(MINIMAL, overrides=["master.metadata_set=a", "metadata_set=b"])
    assert config.master.metadata_set == {"a"}


def test_override_wins_over_environment():
    config = load("", overrides=["master.user=cli", "main.master_region=X"], environ=MASTER_ENV)
    assert config.master.connection.user == "cli"
    assert config.main.master_region == "X"


def test_override_creates_target():
    config = load(MINIMAL, overrides=[f"new.credential=u,{b64('p')},k,t"])
    assert list(config.targets) == ["master", "new"]


def test_override_created_target_without_credential_blames_config():
    error = error_of(MINIMAL, overrides=["new.metadata_set=a"])
    assert (error.source, error.section) == ("--config", "new")


def test_override_error_source_is_config():
    error = error_of(MINIMAL, overrides=["master.list_images_timeout=0"])
    assert str(error).startswith("--config: [master] list_images_timeout: ")
    error = error_of(MINIMAL, overrides=["metadata_condition=image.name=name1"])
    assert error.source == "--config"
    assert error.key == "metadata_condition"


def test_override_target_name_with_colon():
    error = error_of(MINIMAL, overrides=["a:b.x=1"])
    assert (error.source, error.section) == ("--config", "a:b")


def test_override_keys_lowercased():
    assert load(MINIMAL, overrides=["master.Metadata_Set=a"]).master.metadata_set == {"a"}


# --- INI syntax errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "no section header\n",
        "[main]\nmaster_region = R\n[main]\n",
        "[main]\nmaster_region = R\nmaster_region = S\n",
        "[main]\njust a line\n",
    ],
)
def test_ini_errors_are_config_errors(text):
    error = error_of(text)
    assert error.source == "/etc/test.conf"


# --- files -----------------------------------------------------------------------------


def test_find_config_file_order(tmp_path, monkeypatch):
    named = tmp_path / "named.conf"
    named.write_text(MINIMAL)
    etc = tmp_path / "etc.conf"
    etc_dir = tmp_path / "glancesync.conf"
    monkeypatch.setattr(config_module, "DEFAULT_CONFIG_PATH", str(etc))
    monkeypatch.setattr(config_module, "ETC_CONFIG_PATH", str(etc_dir))
    env = {"GLANCESYNC_CONFIG": str(named)}
    assert find_config_file(env, "/given") == str(named)
    assert find_config_file({}, "/given") == "/given"
    assert find_config_file({}) is None
    etc.write_text("")
    assert find_config_file({}) == str(etc)
    etc_dir.write_text("")  # /etc/glancesync/glancesync.conf comes before the old path
    assert find_config_file({}) == str(etc_dir)


def test_glancesync_config_must_exist(tmp_path):
    with pytest.raises(ConfigError) as info:
        find_config_file({"GLANCESYNC_CONFIG": str(tmp_path / "missing.conf")})
    assert info.value.source == "environment"
    with pytest.raises(ConfigError):
        find_config_file({"GLANCESYNC_CONFIG": str(tmp_path)})


def test_glancesync_config_must_be_readable(tmp_path, monkeypatch):
    path = tmp_path / "secret.conf"
    path.write_text(MINIMAL)
    # Root reads any file whatever its mode, so make the permission check answer "no".
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: p != str(path) and real_access(p, mode))
    with pytest.raises(ConfigError, match="cannot be read"):
        find_config_file({"GLANCESYNC_CONFIG": str(path)})


def test_unreadable_file_is_a_configuration_error(tmp_path):
    path = tmp_path / "latin1.conf"
    path.write_bytes(b"[main]\nmaster_region = Le\xf3n\n")
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_config(path=str(path), environ={})


def test_load_config_reads_named_file(tmp_path):
    path = tmp_path / "g.conf"
    path.write_text(MINIMAL)
    config = load_config(environ={"GLANCESYNC_CONFIG": str(path)})
    assert config.source == str(path)
    assert config.main.master_region == "Valladolid"


def test_load_config_reads_given_path(tmp_path):
    path = tmp_path / "g.conf"
    path.write_text(MINIMAL + "bogus = 1\n")
    path.chmod(0o600)  # else the permission warning of config.permission_warnings joins in
    config = load_config(path=str(path), environ={})
    assert config.warnings == ["Unknown option bogus in section [master]"]


def test_unreadable_given_path_is_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(path=str(tmp_path / "nope.conf"), environ={})
    assert info.value.source == str(tmp_path / "nope.conf")
    with pytest.raises(ConfigError):
        load_config(path=str(tmp_path), environ={})


def test_non_utf8_file_is_config_error(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_bytes(b"[main]\nmaster_region = \xff\n")
    with pytest.raises(ConfigError):
        load_config(path=str(path), environ={})


def test_text_wins_over_environment_file(tmp_path):
    config = load_config(text=MINIMAL, environ={"GLANCESYNC_CONFIG": str(tmp_path / "x")})
    assert config.main.master_region == "Valladolid"
    assert config.source == "<text>"


def test_credential_password_must_be_utf8():
    error = error_of(
        "[main]\nmaster_region=R\n[other]\ncredential = u,////8w==,k,t\n", environ=MASTER_ENV
    )
    assert error.problem == "the password in credential is not base64-encoded UTF-8 text"
