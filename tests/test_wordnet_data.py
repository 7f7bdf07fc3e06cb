"""WordNet from Debian's packages: a fresh nltk reader loads what install_from_debian writes."""

from __future__ import annotations

import shutil

import nltk
import pytest
from nltk.corpus.reader import WordNetCorpusReader

from filters import wordnet_data
from filters.wordnet_data import DEBIAN_WORDNET, LEXNAMES, REQUIRED, install_from_debian, main

pytestmark = [
    pytest.mark.skipif(
        not DEBIAN_WORDNET.is_dir(), reason="Debian's wordnet-base is not installed on this machine"
    ),
    pytest.mark.filterwarnings("ignore:The multilingual functions are not available"),  # no omw: expected
]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("nltk_data")
    return target, install_from_debian(target)


@pytest.fixture(scope="module")
def reader(installed):
    target, dest = installed
    # nltk refuses corpus roots outside its data path; allow this one for this module only.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nltk.data, "path", [str(target), *nltk.data.path])
        yield WordNetCorpusReader(str(dest), None)


def test_files_are_copied_not_linked(installed):
    _, dest = installed
    for name in REQUIRED:
        path = dest / name
        assert path.is_file() and not path.is_symlink()
        assert path.read_bytes() == (DEBIAN_WORDNET / name).read_bytes()


def test_lexnames_has_the_45_lexicographer_files(installed):
    _, dest = installed
    lines = (dest / "lexnames").read_text().splitlines()
    assert len(lines) == 45 == len(LEXNAMES)
    assert lines[0] == "00\tadj.all\t3"
    assert lines[5] == "05\tnoun.animal\t1"
    assert lines[44] == "44\tadj.ppl\t3"
    assert [int(line.split("\t")[0]) for line in lines] == list(range(45))


def test_fresh_reader_loads_the_copy(reader):
    dog = reader.synsets("dog", pos="n")[0]
    assert dog.name() == "dog.n.01" and dog.offset() == 2084071
    assert dog.lexname() == "noun.animal"
    assert dog.lemmas()[0].count() > 0  # SemCor counts come from cntlist.rev
    assert reader.morphy("dogs", "n") == "dog"
    assert reader.synsets("tiger", pos="n")[1].lexname() == "noun.animal"


def test_missing_source_files_give_a_clear_error(tmp_path):
    source = tmp_path / "partial"
    source.mkdir()
    for name in REQUIRED:
        if name != "cntlist.rev":
            shutil.copyfile(DEBIAN_WORDNET / name, source / name)
    with pytest.raises(FileNotFoundError, match=r"lacks cntlist\.rev: install Debian's wordnet-base"):
        install_from_debian(tmp_path / "target", source=source)
    with pytest.raises(FileNotFoundError, match=r"data\.noun, index\.noun"):
        install_from_debian(tmp_path / "target", source=tmp_path / "nowhere")
    assert not (tmp_path / "target").exists()  # nothing half-written


def test_reinstall_replaces_links_without_writing_through_them(tmp_path):
    dest = install_from_debian(tmp_path)
    decoy = tmp_path / "decoy"
    decoy.write_text("not wordnet")
    (dest / "data.noun").unlink()
    (dest / "data.noun").symlink_to(decoy)
    install_from_debian(tmp_path)
    assert decoy.read_text() == "not wordnet"
    assert not (dest / "data.noun").is_symlink()
    assert (dest / "data.noun").read_bytes() == (DEBIAN_WORDNET / "data.noun").read_bytes()


def test_broken_install_reads_as_unavailable(monkeypatch):
    class Broken:
        def ensure_loaded(self):
            raise OSError("No such file or directory: '.../corpora/wordnet/lexnames'")

    monkeypatch.setattr(nltk.corpus, "wordnet", Broken())
    assert wordnet_data.wordnet_available() is False


def test_check_command(capsys):
    assert main(["check"]) == 0
    assert capsys.readouterr().out.strip() == "wordnet: ok"
