"""Issue 21, items 8 and 11: names made from user input are safe and unique. A photo whose
stem is '..' cannot make the CLI write outside --out; a user network's module named by an
absolute path never becomes an absolute member name in arrays.npz."""
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from visattn import names

HOSTILE = ["..", ".", "...", "/etc/passwd", "../../x.jpg", "a/../../b.png", "C:\\win\\x.jpg",
           "\x00\x1b[31m.png", "", " .jpg", "..jpg", "con.jpg", "é" * 500 + ".jpg",
           "photo.jpg", "Photo.JPG", "photo.png", "dir/photo.jpg"]


@pytest.mark.parametrize("image", HOSTILE)
def test_every_folder_name_stays_inside_out(image, tmp_path):
    out = tmp_path / "out"
    name = names.folder_names([image])[0]
    target = (out / name).resolve()
    assert target.parent == out.resolve(), (image, name)
    assert name not in ("", ".", "..") and "/" not in name and "\\" not in name
    assert len(name) <= names.MAX_NAME and name.isprintable()


def test_folder_names_are_unique_even_across_case():
    got = names.folder_names(HOSTILE)
    assert len({g.lower() for g in got}) == len(got)
    assert names.folder_names(["a/photo.jpg", "b/photo.jpg", "photo.png"]) == \
        ["photo", "photo_2", "photo_3"]


def test_ordinary_names_are_kept():
    assert names.folder_names(["/data/IMG_0042.JPG", "holiday photo.jpeg", "été.png"]) == \
        ["IMG_0042", "holiday_photo", "été"]


def test_archive_members_are_never_absolute_or_climbing():
    keys = ["/home/user/net.py:layer1.attn", "../../evil", "nl2:affinity", "\\\\server\\share",
            "", "..", "a/../../b"]
    arrays = {names.member_name(k, "row"): np.zeros(2) for k in keys}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        for member in zf.namelist():
            assert not member.startswith(("/", "\\")) and ".." not in Path(member).parts, member
    assert names.member_name("nl2:affinity", "row_10_12") == "nl2:affinity/row_10_12"
    assert names.member_name("/home/u/net.py:layer") == "home_u_net.py:layer"
