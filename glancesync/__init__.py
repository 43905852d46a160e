"""glancesync: keep OpenStack Glance images in step across regions and clouds."""

__version__ = "2.0.0"

# Every keystoneauth session names us in its User-Agent ("glancesync/2.0.0 keystoneauth1/...")
# so that the clouds' operators can tell our requests apart in their logs.
APP_NAME = "glancesync"
# For clients that set a User-Agent of their own (keystoneclient): passed as theirs.
USER_AGENT = f"{APP_NAME}/{__version__}"


def session_identity() -> dict[str, str]:
    """The ``app_name``/``app_version`` keywords of ``keystoneauth1.session.Session``."""
    return {"app_name": APP_NAME, "app_version": __version__}
