"""A sha256 of everything a custom model and loss compute with, or the reason none can be given.

The Python API caches the result of any `nn.Module` and loss function, so its key
must change whenever the number can: the weights and the batch (hashed by value),
and the code that runs on them. Here that code is followed the way Python runs it:

- a module: its class (the class's own functions, class attributes and bases), its
  instance settings (`vars`, e.g. `nn.CrossEntropyLoss(label_smoothing=0.4)`), its
  hooks and its submodules, recursively;
- a function: its bytecode and constants (nested code too), defaults, closure cells,
  attributes, and every global it names: values, functions, classes, and, for a
  module of the user's (a helper file, reloaded or not), the attributes of it the
  function names (`mylosses.ce` -> `mylosses.ce`'s own code);
- a callable object: its class and its attributes; `functools.partial`, bound
  methods: the function and what is bound to it.

Code of the standard library, PyTorch, NumPy and SciPy is keyed by its name and
the installed version (`LIBRARIES`), never read. Anything whose state the key
cannot see (a C object such as `torch.Generator`, an open file, a generator)
raises `Unkeyable` naming the value and where it was reached: the API then
computes without caching and says so, rather than guess.

The key is a pure function of what it reads: the same in every process (no
memory addresses, set orders or hook ids), and independent of source line numbers.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import sys
import sysconfig
import types
from collections import OrderedDict, defaultdict
from importlib import metadata
from pathlib import Path

import torch
from torch import nn

from .stfile import hash_tensor

LIBRARIES = ("torch", "torchvision", "numpy", "scipy")  # plus the standard library
MAX_OBJECTS = 20_000  # a loss that reaches more is not keyed (it would cost more than it saves)
MAX_DEPTH = 200
SCALARS = (type(None), bool, int, float, complex, str, bytes, type(Ellipsis))
OPAQUE_VALUES = (torch.dtype, torch.device, torch.Size, torch.layout, torch.memory_format)  # repr says all
CONTAINER_BASES = (object, dict, list, tuple, OrderedDict, defaultdict)  # compiled bases whose state is read
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class written in Python (its state is its __dict__ / slots)
# bookkeeping Python adds to every class: no behaviour of the user's
CLASS_SKIP = frozenset(
    {"__dict__", "__weakref__", "__module__", "__doc__", "__qualname__", "_abc_impl", "__slotnames__"}
    | {"__annotations__", "__orig_bases__", "__parameters__", "__firstlineno__", "__static_attributes__"}
)
# Module entries that do not change what forward computes
MODULE_SKIP = frozenset(
    {"_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks"}
)


class Unkeyable(Exception):
    """A value whose effect on the result the key cannot vouch for; the message says what and where."""


@functools.cache
def _version(top: str) -> str:
    if top in sys.stdlib_module_names:
        return f"python-{sys.version.split()[0]}"
    try:
        return metadata.version(top)
    except metadata.PackageNotFoundError:
        return str(getattr(sys.modules.get(top), "__version__", "unknown"))


@functools.cache
def _in_stdlib(file: str | None) -> bool:
    if file is None:  # compiled into the interpreter (builtins, sys)
        return True
    return Path(file).resolve().is_relative_to(Path(sysconfig.get_paths()["stdlib"]).resolve())


def library(module_name) -> str | None:
    """'name@version' when `module_name` belongs to the standard library or LIBRARIES, else None. A user's
    file that shadows a standard name (a `test.py`) is not the standard library: its location decides."""
    top = (module_name if isinstance(module_name, str) else "").partition(".")[0]
    if top in LIBRARIES:
        return f"{top}@{_version(top)}"
    if top in sys.stdlib_module_names and _in_stdlib(getattr(sys.modules.get(top), "__file__", None)):
        return f"{top}@{_version(top)}"
    return None


def _qualname(obj) -> str:
    return f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


def _const(value) -> str:
    """A code constant's spelling, independent of hash randomisation (frozensets of `in {...}`)."""
    if isinstance(value, frozenset):
        return "frozenset(" + ",".join(sorted(_const(v) for v in value)) + ")"
    if isinstance(value, tuple):
        return "(" + ",".join(_const(v) for v in value) + ")"
    return repr(value)


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


class Fingerprint:
    """Feed values with `add(value, label)`; `hexdigest()` once done. Raises Unkeyable (see module doc)."""

    def __init__(self, structure_only: nn.Module | None = None):
        self._h = hashlib.sha256()
        self._seen: dict[int, int] = {}
        self._alive: list = []  # keeps every hashed object alive, so no id is reused during one key
        self._path: list[str] = []
        self._names: list[set[str]] = []  # the global names of the functions being hashed (innermost last)
        # the analysed model: its weights are hashed apart (by value), here only names, dtypes and shapes
        self._structure = {id(m) for m in structure_only.modules()} if structure_only is not None else set()

    def hexdigest(self) -> str:
        return self._h.hexdigest()

    def _put(self, *parts) -> None:
        for part in parts:
            self._h.update(str(part).encode() + b"\x1f")

    def _refuse(self, what: str):
        raise Unkeyable(f"{' -> '.join(self._path)}: {what}")

    def add(self, value, label: str) -> None:
        self._path.append(label)
        self._value(value)
        self._path.pop()

    def _value(self, v) -> None:
        if len(self._seen) > MAX_OBJECTS or len(self._path) > MAX_DEPTH:
            self._refuse(f"reaches more than {MAX_OBJECTS:,} objects or {MAX_DEPTH} levels; too much to key")
        if type(v) in SCALARS:
            self._put(type(v).__name__, repr(v))
            return
        if isinstance(v, enum.Enum):
            self._put("enum", _qualname(type(v)), repr(v.value))
            return
        if isinstance(v, OPAQUE_VALUES):
            self._put(type(v).__name__, repr(v))
            return
        if id(v) in self._seen:
            self._put("ref", self._seen[id(v)])
            return
        self._seen[id(v)] = len(self._seen)
        self._alive.append(v)
        self._dispatch(v)

    def _dispatch(self, v) -> None:
        if isinstance(v, torch.Tensor):
            self._tensor(v)
        elif isinstance(v, nn.Module):
            self._module(v)
        elif isinstance(v, types.FunctionType):
            self._function(v)
        elif isinstance(v, types.MethodType):
            self._put("method")
            self.add(v.__func__, "function")
            self.add(v.__self__, "bound to")
        elif isinstance(v, (types.BuiltinFunctionType, types.MethodWrapperType)):
            self._builtin(v)
        elif isinstance(v, (types.MethodDescriptorType, types.WrapperDescriptorType, types.ClassMethodDescriptorType)):
            self._named_library(f"{_qualname(v.__objclass__)}.{v.__name__}", v.__objclass__.__module__)
        elif isinstance(v, functools.partial):
            self._put("partial")
            for label, part in (("function", v.func), ("args", v.args), ("keywords", v.keywords)):
                self.add(part, label)
        elif isinstance(v, type):
            self._class(v)
        elif isinstance(v, types.ModuleType):
            self._module_object(v)
        elif isinstance(v, (staticmethod, classmethod)):
            self._put(type(v).__name__)
            self.add(v.__func__, "function")
        elif isinstance(v, property):
            self._put("property")
            for label in ("fget", "fset", "fdel"):
                self.add(getattr(v, label), label)
        elif type(v) in (tuple, list):
            self._put(type(v).__name__, len(v))
            for i, item in enumerate(v):
                self.add(item, f"[{i}]")
        elif type(v) in (dict, defaultdict, OrderedDict):
            self._dict(v)
        elif type(v) in (set, frozenset):
            self._set(v)
        elif type(v).__module__ == "numpy":
            self._numpy(v)
        else:
            self._instance(v)

    def _tensor(self, t: torch.Tensor) -> None:
        if t.layout != torch.strided or t.device.type == "meta":
            self._refuse(f"a {t.layout} tensor on {t.device}, whose values the key cannot read")
        self._put("tensor", _qualname(type(t)))
        hash_tensor(self._h, "", t)

    def _dict(self, d: dict) -> None:
        self._put(type(d).__name__, len(d))
        if isinstance(d, defaultdict):
            self.add(d.default_factory, "default_factory")
        for key, item in d.items():  # insertion order: the order the code sees
            self.add(key, "key")
            self.add(item, f"[{key!r}]"[:80])

    def _set(self, s) -> None:
        if not all(type(x) in SCALARS for x in s):
            self._refuse(f"a {type(s).__name__} of objects (no order to hash them in)")
        self._put(type(s).__name__, *sorted(f"{type(x).__name__}:{x!r}" for x in s))

    def _numpy(self, v) -> None:
        import numpy as np

        if isinstance(v, np.ndarray) and v.dtype != object:
            self._put("ndarray", v.dtype.str, v.shape)
            self._h.update(np.ascontiguousarray(v).view(np.uint8).reshape(-1).data)
        elif isinstance(v, (np.generic, np.dtype)) and not isinstance(v, np.object_):
            self._put(type(v).__name__, repr(v))
        else:
            self._refuse(f"a numpy {type(v).__name__}, whose state the key cannot read")

    def _named_library(self, name: str, module_name) -> None:
        lib = library(module_name)
        if lib is None:
            self._refuse(f"{name} is compiled code outside {', '.join(LIBRARIES)} and the standard library")
        self._put("library", name, lib)

    def _builtin(self, f) -> None:
        owner = getattr(f, "__self__", None)
        name = getattr(f, "__qualname__", getattr(f, "__name__", "?"))
        if owner is None or isinstance(owner, (types.ModuleType, type)):
            home = owner.__name__ if isinstance(owner, types.ModuleType) else getattr(owner, "__module__", None)
            module = getattr(f, "__module__", None) or home
            self._named_library(f"{module}.{name}", module)
        else:  # a method bound to an object (`x.add`, `items.append`): the object is part of it
            self._named_library(f"{_qualname(type(owner))}.{name}", type(owner).__module__)
            self.add(owner, "bound to")

    def _function(self, fn: types.FunctionType) -> None:
        lib = library(fn.__module__)
        if lib is not None:
            self._put("library", _qualname(fn), lib)
            return
        self._put("function", _qualname(fn))
        self._code(fn.__code__)
        self.add(fn.__defaults__, "defaults")
        self.add(fn.__kwdefaults__, "keyword defaults")
        for i, cell in enumerate(fn.__closure__ or ()):
            try:
                contents = cell.cell_contents
            except ValueError:  # a cell not yet filled
                self._put("empty cell")
                continue
            self.add(contents, f"closure {fn.__code__.co_freevars[i]!r}")
        if fn.__dict__:
            self.add(dict(fn.__dict__), "attributes")
        names = _code_names(fn.__code__)
        scope = fn.__globals__
        self._names.append(names)
        try:
            for name in sorted(names):
                if name in scope:
                    self._put("global", name)
                    self.add(scope[name], f"{fn.__qualname__}'s global {name!r}")
        finally:
            self._names.pop()

    def _code(self, code: types.CodeType) -> None:
        """Bytecode, names, argument layout and constants; nested code by content (line numbers left out)."""
        self._put("code", code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags)
        self._h.update(code.co_code)
        self._put(repr(code.co_names))
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                self._code(const)
            else:
                self._put(_const(const))

    def _class(self, cls: type) -> None:
        lib = library(cls.__module__)
        if lib is not None:
            self._put("library class", _qualname(cls), lib)
            return
        if not cls.__flags__ & _HEAPTYPE:
            self._refuse(f"class {_qualname(cls)} is compiled code outside the libraries dstab can name")
        self._put("class", _qualname(cls))
        self.add(cls.__bases__, "bases")
        for name, attr in cls.__dict__.items():
            if name not in CLASS_SKIP:
                self._put(name)
                self.add(attr, f"{cls.__qualname__}.{name}")

    def _module_object(self, m: types.ModuleType) -> None:
        lib = library(m.__name__)
        if lib is not None:
            self._put("library module", m.__name__, lib)
            return
        # a module of the user's: the attributes the function at hand names (`helpers.ce` -> ce), else all
        # of its own; read from its __dict__, so no module __getattr__ runs
        own = vars(m)
        names = self._names[-1] if self._names else {k for k in own if not k.startswith("__")}
        self._put("module", m.__name__)
        for name in sorted(names):
            if name in own and not name.startswith("__"):
                self._put(name)
                self.add(own[name], f"{m.__name__}.{name}")

    def _module(self, m: nn.Module) -> None:
        structure = id(m) in self._structure
        self.add(type(m), "class")
        for key, value in vars(m).items():
            if key in MODULE_SKIP or (structure and key == "training"):
                continue
            self._put(key)
            if key in ("_parameters", "_buffers") and structure:
                self._structure_tensors(m, key, value)
            elif key.startswith("_") and "hooks" in key and isinstance(value, dict):
                self.add(list(value.values()), key)  # hook ids are process counters: the hooks alone count
            else:
                self.add(value, key)

    def _structure_tensors(self, m: nn.Module, key: str, tensors: dict) -> None:
        """The analysed model's own tensors: names, dtypes and shapes (their values are hashed apart),
        except non-persistent buffers, which its state dict (and so that hash) leaves out."""
        transient = m._non_persistent_buffers_set if key == "_buffers" else set()
        for name, t in tensors.items():
            if t is None or name not in transient:
                self._put(name, None if t is None else (t.dtype, tuple(t.shape)))
            else:
                self.add(t, name)

    def _instance(self, v) -> None:
        """An object of a Python class (a callable loss object, a config, a namedtuple): its class, the
        items of the container it extends, its attributes and slots."""
        cls = type(v)
        python_made = all(c.__flags__ & _HEAPTYPE or c in CONTAINER_BASES for c in cls.__mro__)
        if not python_made:
            self._refuse(f"a {_qualname(cls)} object, whose state the key cannot see")
        self._put("object")
        self.add(cls, "class")
        if isinstance(v, dict):
            self.add(dict(v), "items")
        elif isinstance(v, (list, tuple)):
            self.add(list(v), "items")
        if hasattr(v, "__dict__"):
            self.add(dict(vars(v)), "attributes")
        slots = [s for c in cls.__mro__ for s in getattr(c, "__slots__", ()) if s not in ("__dict__", "__weakref__")]
        for slot in slots:
            self._put(slot)
            self.add(getattr(v, slot, None), slot)


def global_hooks() -> list:
    """Hooks registered for every module (`nn.modules.module.register_module_forward_hook`): they change
    what any forward computes."""
    from torch.nn.modules import module as module_mod

    return [
        list(getattr(module_mod, name).values())
        for name in sorted(dir(module_mod))
        if name.startswith("_global_") and "hooks" in name and isinstance(getattr(module_mod, name), dict)
    ]


def probe_key(model: nn.Module, loss_fn, batch_leaves: list, batch_spec: str, weights_sha256: str) -> str:
    """The key of `loss_fn(model, batch)`: the model's code and settings (weights by their sha256), the
    loss's code and what it reaches, the batch by value. Raises Unkeyable (see the module doc)."""
    fp = Fingerprint(structure_only=model)
    fp.add(weights_sha256, "weights")
    fp.add(model, "the model")
    fp.add(global_hooks(), "global module hooks")
    fp.add(loss_fn, "loss_fn")
    fp.add(batch_leaves, "batch")
    fp.add(batch_spec, "batch layout")
    return fp.hexdigest()
