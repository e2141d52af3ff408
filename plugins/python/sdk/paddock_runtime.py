"""Paddock's Python runtime: one component per world (CPython, the guest SDK and this
loader, compiled once) that runs a plugin's Python source carried beside it.

`paddock plugin build DIR` does not run componentize-py for each edit: it appends the
project's `.py` files to this runtime as the component's `paddock:app` custom section. The
host hands that section back through `paddock:runtime/app.source` (wit/runtime/runtime.wit);
on its first call this loader reads it, imports the project's `app` module from it, and from
then on forwards every call of the world's exports to the classes `app` defines —
`RewardFn`, `Env` (and `GoalEnv`), `Algo`, exactly as a componentize-py build of `app.py`
would call them. Since two versions of a plugin differ only in that section, the host
compiles the runtime once and a new version is live as soon as it is instantiated.

The section's format (`PDKAPP1`): the 8 bytes `PDKAPP1\\n`, then for each file a
little-endian u32 path length, the path (UTF-8, `/`-separated, relative to the project),
a little-endian u32 length and the file's bytes.

Build (the paddock binary does this, and caches the result per world and SDK), with
`wit/runtime/runtime.wit` as the package and `paddock:rl` as its dependency:

    componentize-py -d wit -w reward --all-features componentize paddock_runtime -p sdk -o runtime.wasm
"""

import importlib.abc
import importlib.util
import struct
import sys
import traceback


# The standard library a plugin may import: componentize-py carries only the modules that
# were imported while the runtime was built (the interpreter is snapshotted after this
# module is imported), so everything a plugin may use is imported here. A module missing on
# WASI is skipped; `STDLIB` is what the runtime carries (docs/plugins/python.md).
STDLIB = []
for _m in (
    "abc array base64 binascii bisect calendar cmath codecs collections collections.abc "
    "colorsys contextlib copy copyreg csv dataclasses datetime decimal difflib enum "
    "fractions functools graphlib hashlib heapq hmac io itertools json keyword math numbers "
    "operator pickle pprint queue random re reprlib statistics string struct textwrap time "
    "types typing warnings weakref zlib"
).split():
    try:
        __import__(_m)
        STDLIB.append(_m)
    except ImportError:
        pass

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import app as app_files
from wit_world.imports import types

import paddock_sdk  # noqa: F401  (the guest SDK, for apps that use it)

MAGIC = b"PDKAPP1\n"
APP = "app"


class _LoadError(Exception):
    """What is wrong with the plugin's files themselves (not raised by its code)."""


def _parse(blob):
    """The files of a `PDKAPP1` section: path → bytes."""
    if not blob.startswith(MAGIC):
        raise _LoadError("the plugin's paddock:app section does not start with PDKAPP1")
    files, at = {}, len(MAGIC)
    while at < len(blob):
        (n,) = struct.unpack_from("<I", blob, at)
        path = blob[at + 4 : at + 4 + n].decode("utf-8")
        at += 4 + n
        (m,) = struct.unpack_from("<I", blob, at)
        files[path] = blob[at + 4 : at + 4 + m]
        at += 4 + m
    return files


class _Files(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports modules and packages from the project's files, before anything else."""

    def __init__(self, files):
        self.files = files

    def _where(self, name):
        base = name.replace(".", "/")
        if base + ".py" in self.files:
            return base + ".py", False
        if base + "/__init__.py" in self.files:
            return base + "/__init__.py", True
        return None, False

    def find_spec(self, name, path=None, target=None):
        where, package = self._where(name)
        if where is None:
            return None
        return importlib.util.spec_from_loader(name, self, origin=where, is_package=package)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        where = module.__spec__.origin
        module.__file__ = where
        code = compile(self.files[where], where, "exec")
        exec(code, module.__dict__)


_app = None
_failed = None


def _load():
    """The project's `app` module, imported on the first call (or why it cannot be)."""
    global _app, _failed
    if _app is not None:
        return _app
    if _failed is not None:
        raise Err(types.PluginError_InvalidState(_failed))
    files = {}
    try:
        blob = app_files.source()
        if not blob:
            raise _LoadError(
                "this is Paddock's Python runtime without a plugin in it: build one with "
                "`paddock plugin build DIR` (DIR holds app.py)"
            )
        files = _parse(blob)
        if APP + ".py" not in files:
            raise _LoadError(f"the plugin carries no app.py (it carries {', '.join(sorted(files)) or 'nothing'})")
        sys.meta_path.insert(0, _Files(files))
        sys.modules.pop(APP, None)
        # A project that carries its own copy of the SDK (the starters do) gets that copy,
        # as a bundle of the same project would.
        if "paddock_sdk.py" in files:
            sys.modules.pop("paddock_sdk", None)
        import app  # noqa: PLC0415  (from the plugin's own files)

        _app = app
        return _app
    except Exception as e:  # noqa: BLE001  (every failure becomes the plugin's error)
        sys.modules.pop(APP, None)
        _failed = "".join(traceback.format_exception_only(type(e), e)).strip()
        if isinstance(e, SyntaxError):
            _failed = f"{e.filename} line {e.lineno}: {type(e).__name__}: {e.msg}"
        elif isinstance(e, ModuleNotFoundError):
            _failed += (
                " (this Python runtime carries paddock_sdk, the plugin's own files and the standard "
                "library modules of paddock_runtime.STDLIB; for other packages, such as ones with "
                "native code, build the plugin with `paddock plugin build --bundle`)"
            )
        if not isinstance(e, (SyntaxError, _LoadError)):
            # The innermost frame in the plugin's own files.
            tb = traceback.extract_tb(e.__traceback__)
            ours = [f for f in tb if f.filename in files]
            if ours:
                f = ours[-1]
                _failed = f"{_failed} (at {f.filename} line {f.lineno})"
        raise Err(types.PluginError_InvalidState(f"loading the plugin's app.py failed: {_failed}")) from None


def _forwarder(class_name, method):
    def call(self, *args):
        cls = getattr(_load(), class_name, None)
        if cls is None:
            raise Err(types.PluginError_InvalidState(f"app.py defines no class `{class_name}` (the world's export)"))
        return getattr(cls(), method)(*args)

    call.__name__ = method
    return call


def _export(class_name):
    """A class `class_name` whose methods forward to the app's class of that name."""
    base = getattr(exports, class_name)
    methods = {m: _forwarder(class_name, m) for m in dir(base) if not m.startswith("_")}
    globals()[class_name] = type(class_name, (base,), methods)


for _name in ("RewardFn", "Env", "GoalEnv", "Algo"):
    if hasattr(exports, _name):
        _export(_name)
