# A tour of the Python standard library: pure-Python and C-extension modules.
# Output must be identical under rvbox and under qemu-riscv64 (so: no time, no pids).
import array, base64, bisect, bz2, collections, datetime, decimal, difflib, fractions
import gzip, hashlib, heapq, io, itertools, json, lzma, math, os, random, re, sqlite3
import statistics, struct, tempfile, textwrap, unicodedata, zlib, zoneinfo, ctypes, pathlib

def show(name, value):
    print(f"{name}: {value}")

data = b"".join(b"line %d: the quick brown fox jumps over the lazy dog\n" % i for i in range(2000))
show("sha256", hashlib.sha256(data).hexdigest())
show("md5", hashlib.md5(data).hexdigest())
show("blake2b", hashlib.blake2b(data, digest_size=16).hexdigest())
show("sha3", hashlib.sha3_256(data).hexdigest())
show("crc32", zlib.crc32(data))
z = zlib.compress(data, 9)
show("zlib", (len(z), zlib.decompress(z) == data))
show("gzip", gzip.decompress(gzip.compress(data, mtime=0)) == data)
show("bz2", (len(bz2.compress(data)), bz2.decompress(bz2.compress(data)) == data))
show("lzma", (len(lzma.compress(data, preset=1)), lzma.decompress(lzma.compress(data, preset=1)) == data))
show("base64", base64.b64encode(data[:40]).decode())

obj = {"name": "rvbox", "n": [1, 2.5, None, True], "nested": {"x": "é\u2603"}}
s = json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False)
show("json", s.replace("\n", "|"))
show("json-roundtrip", json.loads(s) == obj)

show("re", re.findall(r"(\w+)@(\w+)\.com", "a@b.com, cc@dd.com; bad@x.org"))
show("re-sub", re.sub(r"(?P<w>\b\w{5}\b)", lambda m: m["w"].upper(), "the quick brown foxes jumps"))

decimal.getcontext().prec = 50
show("decimal", decimal.Decimal(2).sqrt())
show("decimal-div", decimal.Decimal(1) / decimal.Decimal(7))
show("fraction", sum(fractions.Fraction(1, n) for n in range(1, 20)))
show("float", (math.pi, math.e ** 10, math.sqrt(2), math.lgamma(10.5), 0.1 + 0.2, 1e308 * 10))
show("float-fmt", "%.17g %a %e" % (1 / 3, 1 / 3, 6.02214076e23))
show("int", (2 ** 200 + 1) % 1000000007, )
show("bigint", pow(3, 10 ** 4, 10 ** 40))
show("struct", struct.pack("<iQdf?", -5, 2 ** 63 + 1, 1.5, -0.25, True).hex())
show("array", array.array("d", [1.0, 2.5]).tobytes().hex())

random.seed(12345)
show("random", [random.randint(0, 1000) for _ in range(8)] + [round(random.random(), 12)])
xs = [random.gauss(0, 1) for _ in range(1000)]
show("statistics", (round(statistics.mean(xs), 10), round(statistics.stdev(xs), 10)))
h = list(range(100, 0, -7))
heapq.heapify(h)
show("heapq", [heapq.heappop(h) for _ in range(5)])
show("bisect", bisect.bisect_left([1, 3, 5, 7], 6))
show("counter", collections.Counter("mississippi").most_common(3))
show("itertools", list(itertools.islice(itertools.permutations("abcd", 2), 5)))
show("unicodedata", [unicodedata.name(c) for c in "é☃Ω"])
show("textwrap", textwrap.wrap("The quick brown fox jumps over the lazy dog " * 3, 30))
show("difflib", list(difflib.unified_diff(["a", "b", "c"], ["a", "x", "c"], lineterm="")))

utc = datetime.datetime(2024, 2, 29, 12, 30, tzinfo=datetime.timezone.utc)
show("zoneinfo", utc.astimezone(zoneinfo.ZoneInfo("America/New_York")).isoformat())
show("zoneinfo2", utc.astimezone(zoneinfo.ZoneInfo("Asia/Kolkata")).strftime("%c %Z"))
show("date", (datetime.date(2000, 1, 1) + datetime.timedelta(days=10000)).isoformat())

db = sqlite3.connect(":memory:")
db.execute("create table t(id integer primary key, name text, v real)")
db.executemany("insert into t(name, v) values (?, ?)", [(f"n{i}", i * 1.5) for i in range(1000)])
show("sqlite", db.execute("select count(*), sum(v), max(name) from t where id % 3 = 0").fetchone())
show("sqlite-version", sqlite3.sqlite_version_info >= (3, 40))

with tempfile.TemporaryDirectory() as d:
    p = pathlib.Path(d) / "f.txt"
    p.write_text("hello\n" * 1000)
    os.rename(p, pathlib.Path(d) / "g.txt")
    (pathlib.Path(d) / "sub").mkdir()
    show("files", (sorted(os.listdir(d)), os.path.getsize(os.path.join(d, "g.txt"))))
    with open(os.path.join(d, "g.txt"), "r+b") as f:
        f.seek(6000)
        f.write(b"END")
        f.seek(0, io.SEEK_END)
        show("seek", f.tell())

libc = ctypes.CDLL(None)
show("ctypes", libc.strlen(b"riscv64"))
cmp = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))(
    lambda a, b: a[0] - b[0])
arr = (ctypes.c_int * 6)(5, 2, 9, 1, 7, 3)
libc.qsort(arr, 6, ctypes.sizeof(ctypes.c_int), cmp)
show("ctypes-callback", list(arr))
print("done")
