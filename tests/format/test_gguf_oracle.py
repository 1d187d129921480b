"""r1serve's GGUF reader and block dequantisation against llama.cpp's own
Python package (gguf-py, PyPI `gguf`), an independent implementation:

- files written by gguf-py's GGUFWriter (metadata of every value type,
  arrays and an array of arrays, tensors of every type r1serve reads, split
  sets) are read back by `r1serve inspect --json --full`, and every key,
  type, value, tensor name, ggml shape and type must agree with what was
  written and with gguf-py's own GGUFReader;
- random blocks of every quantised type (finite f16 scales, all other bits
  random) are dequantised by `r1serve inspect --dequantize` and by
  gguf.quants.dequantize. Tolerance: 1e-6 relative plus 1e-30 absolute.
  Both compute in float32 from the same integers and f16 scales, but may
  group the products differently (d*sc*q versus d*(sc*q)), which moves a
  result by at most a couple of float32 ulps.
"""

import json
import os
import struct
import subprocess
import tempfile

import numpy as np
import pytest

import gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V

BINARY = os.environ.get("R1SERVE_BINARY", "build/release/r1serve")

# Types r1serve reads, with the byte offsets of their f16 scale fields.
BLOCK_TYPES = {
    Q.Q8_0: [0],
    Q.Q4_0: [0],
    Q.Q4_1: [0, 2],
    Q.Q5_0: [0],
    Q.Q5_1: [0, 2],
    Q.Q2_K: [80, 82],
    Q.Q3_K: [108],
    Q.Q4_K: [0, 2],
    Q.Q5_K: [0, 2],
    Q.Q6_K: [208],
}


def random_blocks(rng, qtype, rows, cols):
    """Raw bytes for a [rows, cols] tensor of `qtype`: random bits, with the
    f16 scale fields set to finite values of either sign."""
    elems, size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = rows * cols // elems
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in BLOCK_TYPES[qtype]:
        scales = (rng.standard_normal(n_blocks) * 0.05).astype(np.float16)
        raw[:, off : off + 2] = scales.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(rows, cols // elems * size)


def run_inspect(*args):
    out = subprocess.run([BINARY, "inspect", *args], capture_output=True, text=True, timeout=120)
    return out


def inspect_json(path):
    out = run_inspect(path, "--json", "--full")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


METADATA = [
    ("t.u8", 200, V.UINT8, "u8"),
    ("t.i8", -100, V.INT8, "i8"),
    ("t.u16", 60000, V.UINT16, "u16"),
    ("t.i16", -30000, V.INT16, "i16"),
    ("t.u32", 4000000000, V.UINT32, "u32"),
    ("t.i32", -2000000000, V.INT32, "i32"),
    ("t.u64", 2**63 + 5, V.UINT64, "u64"),
    ("t.i64", -(2**62), V.INT64, "i64"),
    ("t.f32", 1.5, V.FLOAT32, "f32"),
    ("t.f64", -2.25e-300, V.FLOAT64, "f64"),
    ("t.bool", True, V.BOOL, "bool"),
    ("t.str", "héllo <｜Assistant｜>", V.STRING, "string"),
]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One file with every metadata type and every tensor type."""
    d = tmp_path_factory.mktemp("gguf")
    path = str(d / "all.gguf")
    rng = np.random.default_rng(20261206)
    w = gguf.GGUFWriter(path, "llama")
    for key, val, vtype, _ in METADATA:
        w.add_key_value(key, val, vtype)
    w.add_array("t.strings", ["a b", "Ġ t", ""])
    w.add_array("t.ints", [1, -2, 3])
    w.add_array("t.floats", [0.5, -1.0])
    w.add_key_value("t.nested", [[1, 2], [3]], V.ARRAY, sub_type=V.ARRAY)
    tensors = {}
    for qtype in BLOCK_TYPES:
        raw = random_blocks(rng, qtype, 3, 512)
        name = "q." + qtype.name
        w.add_tensor(name, raw, raw_dtype=qtype)
        tensors[name] = (qtype, raw)
    for name, arr in [
        ("f.F32", rng.standard_normal((5, 7)).astype(np.float32)),
        ("f.F16", rng.standard_normal((4, 6)).astype(np.float16)),
        ("f.vec", rng.standard_normal(9).astype(np.float32)),
    ]:
        w.add_tensor(name, arr)
        tensors[name] = (None, arr)
    bf = (rng.standard_normal((2, 8)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    w.add_tensor("f.BF16", bf.view(np.uint8).reshape(2, 16), raw_dtype=Q.BF16)
    tensors["f.BF16"] = (Q.BF16, bf)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path, tensors


def test_metadata_round_trip(written):
    path, _ = written
    doc = inspect_json(path)
    assert len(doc["files"]) == 1
    meta = doc["files"][0]["metadata"]
    assert meta["general.architecture"]["value"] == "llama"
    for key, val, _, tname in METADATA:
        assert meta[key]["type"] == tname, key
        if tname in ("f32", "f64"):
            assert meta[key]["value"] == pytest.approx(val, rel=1e-7), key
        else:
            assert meta[key]["value"] == val, key
    assert meta["t.strings"]["value"] == ["a b", "Ġ t", ""]
    assert meta["t.strings"]["item_type"] == "string"
    assert meta["t.ints"]["value"] == [1, -2, 3]
    assert meta["t.floats"]["value"] == [0.5, -1.0]
    assert meta["t.nested"]["item_type"] == "array"
    assert meta["t.nested"]["value"] == [[1, 2], [3]]


def test_tensor_infos_agree_with_gguf_reader(written):
    path, _ = written
    doc = inspect_json(path)
    ours = {t["name"]: t for t in doc["files"][0]["tensors"]}
    reader = gguf.GGUFReader(path)
    assert len(ours) == len(reader.tensors)
    for t in reader.tensors:
        mine = ours[t.name]
        assert mine["dims"] == [int(x) for x in t.shape], t.name
        assert mine["type"] == t.tensor_type.name, t.name
        assert mine["bytes"] == int(t.n_bytes), t.name
        assert doc["files"][0]["data_offset"] + mine["offset"] == int(t.data_offset), t.name


@pytest.mark.parametrize("name", ["q." + q.name for q in BLOCK_TYPES] + ["f.F32", "f.F16", "f.vec", "f.BF16"])
def test_dequantize_matches_gguf_py(written, name, tmp_path):
    path, tensors = written
    qtype, raw = tensors[name]
    out = tmp_path / "values.f32"
    res = run_inspect(path, "--dequantize", name, "--out", str(out))
    assert res.returncode == 0, res.stderr
    ours = np.fromfile(out, dtype="<f4")
    if qtype is None:
        want = raw.astype(np.float64).reshape(-1)
    elif qtype == Q.BF16:
        want = (raw.astype(np.uint32) << 16).view(np.float32).astype(np.float64).reshape(-1)
    else:
        want = gguf.quants.dequantize(raw, qtype).astype(np.float64).reshape(-1)
    assert ours.shape == want.shape
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours.astype(np.float64), want, rtol=1e-6, atol=1e-30)


def test_split_set_is_read_whole(tmp_path):
    base = str(tmp_path / "model.gguf")
    rng = np.random.default_rng(7)
    w = gguf.GGUFWriter(base, "qwen2", split_max_tensors=2)
    arrays = {f"t{i}": rng.standard_normal((3, 4)).astype(np.float32) for i in range(5)}
    for name, arr in arrays.items():
        w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    names = sorted(os.listdir(tmp_path))
    assert names == [f"model-0000{i}-of-00003.gguf" for i in (1, 2, 3)], names
    first = str(tmp_path / names[0])
    doc = inspect_json(first)
    assert len(doc["files"]) == 3
    seen = [t["name"] for f in doc["files"] for t in f["tensors"]]
    assert sorted(seen) == sorted(arrays)
    for name, arr in arrays.items():
        out = tmp_path / f"{name}.f32"
        res = run_inspect(first, "--dequantize", name, "--out", str(out))
        assert res.returncode == 0, res.stderr
        np.testing.assert_array_equal(np.fromfile(out, dtype="<f4"), arr.reshape(-1))
    # The second file alone is refused with a pointer to the first.
    res = run_inspect(str(tmp_path / names[1]), "--json")
    assert res.returncode != 0 and "00001-of-00003" in res.stderr
    # A missing split is named.
    os.remove(tmp_path / names[2])
    res = run_inspect(first, "--json")
    assert res.returncode != 0 and names[2] in res.stderr


def mutate(path, tmp_path, fn):
    data = bytearray(open(path, "rb").read())
    fn(data)
    out = tmp_path / "bad.gguf"
    out.write_bytes(bytes(data))
    return str(out)


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda d: d.__setitem__(slice(0, 4), b"GGUX"), "not a GGUF file"),
        (lambda d: d.__setitem__(slice(4, 8), struct.pack("<I", 1)), "version 1"),
        (lambda d: d.__setitem__(slice(4, 8), struct.pack(">I", 3)), "big-endian"),
        (lambda d: d.__setitem__(slice(4, 8), struct.pack("<I", 9)), "unknown GGUF version 9"),
        (lambda d: d.__setitem__(slice(8, 16), struct.pack("<Q", 2**40)), "tensors, more than"),
        (lambda d: d.__delitem__(slice(len(d) - 100, len(d))), "past the end"),
        (lambda d: d.__delitem__(slice(200, len(d))), "truncated"),
    ],
)
def test_bad_files_get_clear_errors(written, tmp_path, change, words):
    path, _ = written
    bad = mutate(path, tmp_path, change)
    res = run_inspect(bad, "--json")
    assert res.returncode != 0
    assert words in res.stderr, res.stderr
    assert "bad.gguf" in res.stderr


def write_one_tensor(path, qtype, rows=2):
    w = gguf.GGUFWriter(str(path), "llama")
    elems, size = gguf.GGML_QUANT_SIZES[qtype]
    w.add_tensor("blk.0.ffn_up.weight", np.zeros((rows, size), dtype=np.uint8), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.mark.parametrize("qtype", [Q.IQ4_XS, Q.IQ2_XXS, Q.TQ1_0, Q.IQ4_NL])
def test_a_type_r1serve_cannot_read_is_shown_and_refused_by_name(tmp_path, qtype):
    # ggml's other types parse (gguf-py's sizes agree with r1serve's), so
    # inspect shows the file; reading the tensor's values is refused.
    path = tmp_path / "iq.gguf"
    write_one_tensor(path, qtype)
    doc = inspect_json(str(path))
    (t,) = doc["files"][0]["tensors"]
    elems, size = gguf.GGML_QUANT_SIZES[qtype]
    assert t["type"] == qtype.name and t["bytes"] == 2 * size
    res = run_inspect(str(path), "--dequantize", "blk.0.ffn_up.weight", "--out", str(tmp_path / "o"))
    assert res.returncode != 0
    assert qtype.name in res.stderr and "blk.0.ffn_up.weight" in res.stderr
    assert "cannot read" in res.stderr and "Q4_K" in res.stderr


def test_a_type_id_ggml_does_not_define_is_named(tmp_path):
    path = tmp_path / "bad_type.gguf"
    write_one_tensor(path, Q.Q8_0)
    data = bytearray(path.read_bytes())
    # The tensor info ends with the type (u32) and offset (u64).
    name = b"blk.0.ffn_up.weight"
    at = data.index(name) + len(name) + 4 + 2 * 8
    assert struct.unpack_from("<I", data, at)[0] == Q.Q8_0.value
    struct.pack_into("<I", data, at, 99)
    path.write_bytes(bytes(data))
    res = run_inspect(str(path), "--json")
    assert res.returncode != 0
    assert "type 99" in res.stderr and "blk.0.ffn_up.weight" in res.stderr
