"""The project config, ``calibgate.yaml``: where the data, model, policy and runs live.

Every path is relative to the directory holding the config file.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from calibgate.errors import ConfigError
from calibgate.paths import read_user_text
from calibgate.yamlio import describe_yaml_error, load_unique

CONFIG_NAME = "calibgate.yaml"
CONFIG_SCHEMA_VERSION = 1
MAX_SEED = 2**32 - 1  # numpy's and torch's seeds are unsigned 32-bit
MAX_BOOTSTRAP = 100_000  # resamples: past this the intervals stop changing and an evaluation takes hours
MAX_TARGET_SIZE = 10_000_000  # labeled examples: the --target-size option's bound too
MAX_BATCH = 65_536  # texts per batch: the --batch-size options' bound and the Python API's
# a registry model name (the gto rule): git tags are name@vX.Y.Z, so calibgate.yaml's name is checked when it is read
MODEL_NAME = r"[a-zA-Z0-9]([a-zA-Z0-9\-/_]*[a-zA-Z0-9])?"
MAX_MODEL_NAME = 128  # characters: each '/'-part of a tag must stay a file name git can write


def is_model_name(value: str) -> bool:
    """The gto name rule, and no '//' (git refuses an empty path part, after the artifacts were stored)."""
    return re.fullmatch(MODEL_NAME, value) is not None and "//" not in value

MAX_THREADS = 256  # onnxruntime and torch thread pools: beyond this a typo, not a machine (a billion threads hang or crash)


def check_seed(seed: int) -> int:
    """``seed`` when numpy and torch accept it, else a ConfigError naming it (exit 2, not a crash inside numpy)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed {seed!r} is not an integer from 0 to {MAX_SEED}", fix="pass --seed 0 (or any non-negative integer)")
    return seed


def check_threads(threads: int | None) -> int | None:
    """``threads`` (None: the default) when a thread pool can take it, else a ConfigError naming it."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS):
        raise ConfigError(f"{threads!r} threads is not an integer from 1 to {MAX_THREADS}",
                          fix="pass --threads N with N at most the CPUs you have (or leave it out)")
    return threads


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    calibration: str = Field("datasets/calibration.jsonl", description="small labeled set the planner reads")
    train: str = Field("datasets/train.jsonl", description="full labeled set training uses")
    test: str = Field("datasets/test.jsonl", description="held-out labeled set for evaluation and the gate")
    production: str | None = Field("datasets/production.jsonl", description="unlabeled production sample (domain shift)")
    dvc_target: str | None = Field("datasets", description="DVC-tracked path whose md5 versions the data")
    incoming: str | None = Field(
        None, description="newly labeled JSONL (file or directory, inside dvc_target) that 'calibgate retrain' merges into train"
    )

    @field_validator("calibration", "train", "test", "production", "dvc_target", "incoming")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        # '' read as the project directory or, for production, silently as 'not measured'
        if value is not None and not value.strip():
            raise ValueError("is empty: give a path, or null (where the key allows it) to leave it out")
        return value


class ProjectConfig(BaseModel):
    """Contents of ``calibgate.yaml``."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = Field(CONFIG_SCHEMA_VERSION, description="config format version")
    name: str = Field("model", description="model name in the registry (git tags name@vX.Y.Z)")
    model: str = Field("all-MiniLM-L6-v2", description="base encoder: the bundled default or a local model directory")
    data: DataConfig = Field(default_factory=DataConfig)
    policy: str = Field("policies/default.yaml", description="policy file the planner and the gate apply")
    runs_dir: str = Field("runs", description="where 'calibgate train' writes run directories")
    target_size: int | None = Field(None, ge=1, le=MAX_TARGET_SIZE,
                                    description="labeled examples training will use; default: size of data.train")
    hardware: Literal["cpu", "gpu"] = Field("cpu", description="hardware class the cost model estimates for: cpu or gpu")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="random seed of planning and training (unsigned 32-bit)")

    # set after loading: the directory the config lives in, and the file itself (None: no config file, defaults)
    root: Path = Field(default=Path("."), exclude=True)
    source: Path | None = Field(default=None, exclude=True)

    @field_validator("model", "policy", "runs_dir")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty: give a path (or leave the key out for its default)")
        return value

    @field_validator("name")
    @classmethod
    def _registry_name(cls, value: str) -> str:
        if len(value) > MAX_MODEL_NAME or not is_model_name(value):
            raise ValueError(f"{value[:40]!r} is not a registry model name: letters, digits, '-', '_', '/', starting and "
                             f"ending alphanumeric, at most {MAX_MODEL_NAME} characters, such as ticket-router")
        return value

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != CONFIG_SCHEMA_VERSION:
            raise ValueError(f"this calibgate reads calibgate.yaml schema_version {CONFIG_SCHEMA_VERSION}")
        return value

    def path(self, relative: str | None) -> Path | None:
        if relative is None:
            return None
        p = Path(relative)
        return p if p.is_absolute() else self.root / p

    def model_path(self) -> str:
        """The model as given, resolved against the project root when it is a relative directory."""
        candidate = self.root / self.model
        return str(candidate) if not Path(self.model).is_absolute() and candidate.exists() else self.model


_SET_AFTER_LOADING = ("root", "source")


def find_config(start: Path | None = None) -> Path | None:
    """The nearest ``calibgate.yaml`` at or above ``start`` (the current directory)."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / CONFIG_NAME
        if candidate.exists():
            return candidate
    return None


def load_config(path: str | Path | None = None, *, required: bool = False) -> ProjectConfig:
    """Load ``calibgate.yaml`` (found upwards from the cwd when ``path`` is None).

    With no config file and ``required=False``, defaults rooted at the cwd.
    """
    if path is None:
        found = find_config()
        if found is None:
            if required:
                raise ConfigError(
                    f"no {CONFIG_NAME} in {Path.cwd()} or its parents",
                    fix="run inside a calibgate project, pass --config, or name the data files by option",
                )
            return ProjectConfig(root=Path.cwd())
        path = found
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such config file", fix=f"create {CONFIG_NAME} or fix --config")
    text = read_user_text(path, what="calibgate config", fix=f"fix --config or {CONFIG_NAME}", error=ConfigError)
    try:
        raw = load_unique(text) or {}
    except yaml.YAMLError as exc:
        line, problem = describe_yaml_error(exc, text)
        where = f":{line}" if line else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({problem})", fix="fix the YAML syntax") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML (nested too deeply)", fix="fix the YAML syntax") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level", fix="write 'key: value' lines")
    internal = next((key for key in raw if key in _SET_AFTER_LOADING), None)
    if internal is not None:  # fields set from where the file is, not keys: 'root: /etc' read as 'not an instance of Path'
        valid = ", ".join(name for name in ProjectConfig.model_fields if name not in _SET_AFTER_LOADING)
        raise ConfigError(f"{path}: unknown key '{internal}' (valid keys: {valid}); paths are relative to the directory "
                          f"holding {CONFIG_NAME}", fix="see calibgate.yaml in the README")
    try:
        config = ProjectConfig.model_validate(raw, strict=True)  # 'seed: true' or 'target_size: "300"' are mistakes, not 1 and 300
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe_validation_error(exc, ProjectConfig)}", fix="see calibgate.yaml in the README") from None
    return config.model_copy(update={"root": path.parent.resolve(), "source": path})


def describe_validation_error(exc: ValidationError, model: type[BaseModel]) -> str:
    """First pydantic error as one sentence; unknown keys get the closest valid key suggested."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        valid = _valid_keys(model, err["loc"][:-1])
        close = difflib.get_close_matches(str(err["loc"][-1]), valid, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f" (valid keys: {', '.join(valid)})"
        return f"unknown key '{loc}'{hint}"
    if err["type"] == "value_error":  # our own validators: the message already says what was given
        return f"'{loc}': {err['msg'].removeprefix('Value error, ')}"
    return f"'{loc}': {err['msg']} (got {err.get('input')!r})"


def _valid_keys(model: type[BaseModel], parents: tuple) -> list[str]:
    current = model
    for part in parents:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            current = annotation
        else:
            args = getattr(annotation, "__args__", ())
            nested = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            if not nested:
                break
            current = nested[0]
    return [name for name in current.model_fields if name not in _SET_AFTER_LOADING]
