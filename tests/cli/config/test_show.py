"""`config show`: every key with its effective value and source, as a file that loads back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from pipecast.cli import UsageError
from pipecast.cli.config import ConfigFile, as_toml, document, load_config, sources

DOCS = Path(__file__).parents[3] / "docs" / "config.md"

FILES = [
    "",
    "[stage.crf_search]\ntarget = 93\n[media]\nreplace = true\nroots = ['/srv/v']\n",
    "[node]\nheartbeat = 2\n[encode]\nextra = ['-svtav1-params', 'tune=0']\n[history]\nmax_age = 5.0\n",
    "stages = []\nnetworks = []\n",
    (
        "[[stages]]\nname='analyze'\nkind='analyze'\n[[stages]]\nname='fixed'\nkind='crf'\n"
        "[[networks]]\nname='n'\nmodels=['paint', 'caption']\nmax_invocations=5\n"
        "pace=[{until=10, delay=0.5}, {delay=2}]\nonly_when_watched=true\n"
    ),
]


@pytest.mark.parametrize("text", FILES)
def test_what_show_prints_loads_back_to_the_same_config(tmp_path: Path, text: str) -> None:
    first = tmp_path / "first.toml"
    first.write_text(text)
    loaded = load_config(first)
    doc = document(loaded)
    again = tmp_path / "again.toml"
    again.write_text(as_toml(doc, sources(loaded, doc)))
    assert document(load_config(again)) == doc


def test_each_value_says_where_it_came_from(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text("[stage.crf_search]\ntarget = 93\n[encode]\npreset = 4\n")
    loaded = load_config(path, options={"heartbeat": (2.5, "env PIPECAST_HEARTBEAT")})
    doc = document(loaded)
    text = as_toml(doc, sources(loaded, doc))
    assert re.search(rf"^target = 93 +# file {re.escape(str(path))}$", text, re.M)
    assert re.search(r"^max_probes = 6 +# default$", text, re.M)
    assert re.search(rf"^preset = 4 +# file {re.escape(str(path))}$", text, re.M)
    assert re.search(r"^heartbeat = 2.5 +# env PIPECAST_HEARTBEAT$", text, re.M)
    assert re.search(r"^crf = 35.0 +# default$", text, re.M)


def _key_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        out.append(prefix + name)
        nested = field.annotation
        for arg in (nested, *getattr(nested, "__args__", ())):
            for inner in (arg, *getattr(arg, "__args__", ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    out += _key_paths(inner, f"{prefix}{name}.")
    return out


def test_docs_config_md_documents_every_key_of_the_schema() -> None:
    text = DOCS.read_text()
    missing = [
        p
        for p in _key_paths(ConfigFile)
        if not any(f in text for f in (f"`{p}`", f"`[{p}]`", f"`[[{p}]]`"))
    ]
    assert not missing, f"docs/config.md does not document {missing}"


def test_a_store_url_is_shown_without_its_password(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(
        '[node]\nname = "box1"\nstore = "postgresql://pipecast:s3cret@db.lan:5432/media"\n'
    )
    loaded = load_config(path)
    assert loaded.node.store_url == "postgresql://pipecast:s3cret@db.lan:5432/media"
    text = as_toml(document(loaded), sources(loaded, document(loaded)))
    assert "s3cret" not in text
    assert 'store = "postgresql://pipecast:***@db.lan:5432/media"' in text


@pytest.mark.parametrize(
    ("node", "why"),
    [
        ('store = "postgresql://h/db"', "needs a name of its own"),  # two "local"s would clash
        ('name = "box1"\nstore = "mysql://h/db"', "should match pattern"),
        ('name = "a b"\nstore = "postgresql://h/db"', "should match pattern"),
        ('name = "box1"\nlease = 0.5', "greater than or equal to 1"),
    ],
)
def test_a_cluster_setting_out_of_bounds_is_refused_with_the_reason(
    tmp_path: Path, node: str, why: str
) -> None:
    path = tmp_path / "node.toml"
    path.write_text(f"[node]\n{node}\n")
    with pytest.raises(UsageError, match=why):
        load_config(path)


def test_a_paths_table_that_names_a_folder_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text('[paths]\n"/mnt/a" = "/media"\n"/mnt/b" = "/media"\n')
    with pytest.raises(UsageError, match="same shared folder"):
        load_config(path)
