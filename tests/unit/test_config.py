"""The strict config: defaults, YAML deltas, dotted overrides, one-line errors."""

from pathlib import Path

import pytest

from miar import config as C


def test_defaults_are_frozen():
    cfg = C.Config()
    with pytest.raises(Exception):
        cfg.seed = 3  # type: ignore[misc]
    assert cfg.model.token_scheme == "query" and cfg.model.n_tokens == 4


def test_load_smoke_and_overrides():
    cfg = C.load("smoke", overrides=["model.d_model=16", "loss.weight=0.5", "data.modalities=[text, audio]"],
                 seed=7)
    assert cfg.name == "smoke" and cfg.seed == 7
    assert cfg.model.d_model == 16 and cfg.loss.weight == 0.5
    assert cfg.data.modalities == ("text", "audio")
    assert cfg.data.synthetic.n_train == 256  # from the YAML delta


def test_int_is_accepted_for_float_but_not_the_reverse():
    assert C.load("smoke", overrides=["loss.weight=1"]).loss.weight == 1.0
    with pytest.raises(C.ConfigError, match="model.d_model: expected an integer"):
        C.load("smoke", overrides=["model.d_model=3.5"])


@pytest.mark.parametrize("override,match", [
    ("model.nope=1", "unknown config key 'model.nope'"),
    ("model.token_scheme=h9", "model.token_scheme: 'h9' is not one of"),
    ("model.n_tokens=5", "model.n_tokens: 5 is not one of"),
    ("train.progress=yes please", "train.progress: expected bool"),
    ("data.synthetic.strength=[1, 2]", "expected 3 values"),
    ("nodots", "not of the form key=value"),
])
def test_bad_overrides_raise_one_line(override, match):
    with pytest.raises(C.ConfigError, match=match) as e:
        C.load("smoke", overrides=[override])
    assert "\n" not in str(e.value)


def test_unknown_experiment_lists_known():
    with pytest.raises(C.ConfigError, match="unknown experiment 'nope'.*smoke"):
        C.load("nope")


def test_yaml_file_with_unknown_key_names_the_file(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("train:\n  epochz: 3\n")
    with pytest.raises(C.ConfigError, match=r"x.yaml: unknown config key 'train.epochz'"):
        C.load(str(p))


def test_base_inheritance_and_dump_roundtrip(tmp_path):
    p = tmp_path / "child.yaml"
    p.write_text("base: smoke\nname: child\nmodel:\n  gate: true\n")
    cfg = C.load(str(p))
    assert cfg.name == "child" and cfg.model.gate and cfg.model.d_model == 32
    q = tmp_path / "resolved.yaml"
    q.write_text(C.dump(cfg))
    assert C.load(str(q)) == cfg  # a run record's config.yaml reruns that run


def test_every_shipped_experiment_resolves():
    for name in C.list_experiments():
        assert C.load(name).name
    shipped = {p.stem for p in C.EXPERIMENTS_DIR.glob("*.yaml")}
    assert shipped == set(C.list_experiments()) | set(C.DECLARATIONS)  # every other file is an experiment
    with pytest.raises(C.ConfigError, match="a study declaration, not an experiment"):
        C.load("margins")


RECORDS = Path(__file__).resolve().parents[2] / "results" / "runs"


@pytest.mark.parametrize("old,new", sorted(C.LEGACY_TOKEN_SCHEMES.items()))
def test_token_schemes_are_named_after_their_classes_and_old_names_still_load(tmp_path, old, new):
    """``query``, ``directed``, ``joint`` select QueryTokens, DirectedTokens, JointTokens; the first names
    (h1, h2, h3) still load, from an override or an experiment file, as the new value, with one deprecation
    warning that names where the old name was written."""
    from miar.model.interaction import build_interaction

    assert type(build_interaction(new, True, ("text", "audio"), True, 8, 2, 1, 0.0)).__name__.lower().startswith(new)
    with pytest.warns(FutureWarning, match=f"override: model.token_scheme={old} is deprecated, use {new}") as w:
        assert C.load("smoke", overrides=[f"model.token_scheme={old}"]).model.token_scheme == new
    assert len(w) == 1 and "\n" not in str(w[0].message)
    path = tmp_path / "exp.yaml"
    path.write_text(f"base: smoke\nmodel:\n  token_scheme: {old}\n")
    with pytest.warns(FutureWarning, match=str(path)):
        assert C.load(str(path)).model.token_scheme == new


def test_a_config_keeps_its_identity_across_the_token_scheme_rename():
    """A config dumped today (``token_scheme: query``) and the same config as records spelled it before the
    rename (``h1``) are one identity, so committed runs stay complete and tuning digests unchanged; another
    scheme is another identity."""
    now = C.dump(C.load("smoke"))
    assert "token_scheme: query" in now
    before = now.replace("token_scheme: query", "token_scheme: h1")
    assert C.identity(now) == C.identity(before) == before
    assert C.identity(C.dump(C.load("smoke", overrides=["model.token_scheme=joint"]))) != C.identity(now)


@pytest.mark.skipif(not (RECORDS / "mosi_std_miar+tuned.h2").is_dir(), reason="no committed h2 ablation record")
def test_a_committed_record_written_with_an_old_name_loads_as_the_same_config():
    """A committed run record's config.yaml (never rewritten) still loads, and its config dumps back to the
    same identity (the sweeps' and collect's test of "the same run")."""
    record = sorted((RECORDS / "mosi_std_miar+tuned.h2").glob("s*/config.yaml"))[0]
    with pytest.warns(FutureWarning, match="token_scheme=h2"):
        cfg = C.load(str(record))
    assert cfg.model.token_scheme == "directed"
    assert C.identity(C.dump(cfg)) == C.identity(record.read_text())
