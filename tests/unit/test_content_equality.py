"""reference 1.4: same content = equal non-empty checksums, and equal multihashes
when both images carry one with the same algorithm."""

from __future__ import annotations

import pytest

from glancesync.image import Image, same_content

MD5 = "d41d8cd98f00b204e9800998ecf8427e"


def image(checksum: str = MD5, algo: str = "sha512", value: str = "aa") -> Image:
    return Image(name="x", id="1", checksum=checksum, os_hash_algo=algo, os_hash_value=value)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (image(), image(), True),
        (image(value="aa"), image(value="bb"), False),  # md5 equal, multihash differs
        (image(checksum="0" * 32), image(), False),
        (image(checksum=""), image(checksum=""), False),  # no checksum: never the same
        (image(algo="", value=""), image(value="bb"), True),  # one side has no multihash
        (image(algo="sha256", value="aa"), image(value="bb"), True),  # not comparable
        (image(value=""), image(value="bb"), True),
    ],
)
def test_same_content(a: Image, b: Image, same: bool):
    assert same_content(a, b) is same
    assert same_content(b, a) is same
