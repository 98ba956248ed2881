# Processes, threads and signals from Python (run as `python3 -` with this on stdin):
# subprocess, os.fork/waitpid/pipe, multiprocessing with the fork start method,
# threading, concurrent.futures, signal. Prints facts only (no pids, no timings); results
# of parallel work are sorted.
import concurrent.futures
import multiprocessing as mp
import os
import queue
import signal
import subprocess
import sys
import threading
import time


def section(name):
    print("==", name, flush=True)


section("subprocess")
r = subprocess.run(["echo", "hello", "world"], capture_output=True, text=True)
print("run:", r.returncode, repr(r.stdout), repr(r.stderr))
r = subprocess.run(["bash", "-c", "echo out; echo err >&2; exit 3"], capture_output=True)
print("run with status 3:", r.returncode, r.stdout, r.stderr)
r = subprocess.run(["tr", "a-z", "A-Z"], input=b"stdin through a pipe\n", stdout=subprocess.PIPE)
print("input=:", r.stdout)
print("check_output:", subprocess.check_output(["seq", "3"]).split())
try:
    subprocess.check_output(["false"])
except subprocess.CalledProcessError as e:
    print("CalledProcessError:", e.returncode, e.cmd)
# (exec failures: see processes.rs, qemu-user's vfork cannot report them)
print("shell=True (/bin/sh):", subprocess.run("echo $((6*7)) | tr 4 X; exit 3", shell=True,
                                             capture_output=True, text=True))
print("shell=True, executable=bash:", subprocess.run("echo ${BASH_VERSINFO[0]}", shell=True,
      executable="/bin/bash", capture_output=True, text=True).stdout.strip().isdigit())
print("os.system:", os.waitstatus_to_exitcode(os.system("exit 5")))
with os.popen("seq 3 | tr '\\n' ,") as f:
    print("os.popen:", f.read())
try:
    subprocess.run(["sleep", "5"], timeout=0.3)
except subprocess.TimeoutExpired as e:
    print("TimeoutExpired after", e.timeout)
p = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
out, _ = p.communicate(b"x" * 200000)
print("Popen.communicate 200000 bytes through cat:", len(out), p.returncode)
p = subprocess.Popen(["bash", "-c", "read a; echo got $a; read b; echo got $b"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
p.stdin.write("one\n")
p.stdin.flush()
print("interactive:", p.stdout.readline().strip())
p.stdin.write("two\n")
p.stdin.close()
print("interactive:", p.stdout.readline().strip(), p.wait())
p = subprocess.Popen(["sleep", "10"])
p.terminate()
print("terminate:", p.wait())
p = subprocess.Popen(["sleep", "10"])
p.send_signal(signal.SIGINT)
print("SIGINT:", p.wait())
p1 = subprocess.Popen(["seq", "100"], stdout=subprocess.PIPE)
p2 = subprocess.Popen(["wc", "-l"], stdin=p1.stdout, stdout=subprocess.PIPE)
p1.stdout.close()
print("Popen pipeline seq | wc -l:", p2.communicate()[0].strip(), p1.wait(), p2.wait())
r = subprocess.run(["bash", "-c", "echo $FOO; pwd"], env={"FOO": "bar"}, cwd="/usr/lib",
                   capture_output=True, text=True)
print("env and cwd:", r.stdout.split())
print("Popen killed by SIGKILL:", subprocess.Popen(["bash", "-c", "kill -9 $$"]).wait())

section("os.fork, os.pipe, os.waitpid")
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    os.write(w, b"from the child")
    os._exit(7)
os.close(w)
data = os.read(r, 100)
os.close(r)
_, status = os.waitpid(pid, 0)
print("child said", data, "exit", os.waitstatus_to_exitcode(status), os.WIFEXITED(status))
pid = os.fork()
if pid == 0:
    os.kill(os.getpid(), signal.SIGTERM)
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("child killed:", os.WIFSIGNALED(status), signal.Signals(os.WTERMSIG(status)).name,
      os.waitstatus_to_exitcode(status))
print("WNOHANG without children:", end=" ")
try:
    os.waitpid(-1, os.WNOHANG)
except ChildProcessError as e:
    print("ChildProcessError", e.errno)
pid = os.fork()
if pid == 0:
    os.execvp("bash", ["bash", "-c", "exit 11"])
print("fork + execvp:", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
pids = []
for i in range(5):
    pid = os.fork()
    if pid == 0:
        os._exit(i * 2)
    pids.append(pid)
codes = sorted(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids)
print("five children:", codes)
print("posix_spawn:", os.waitstatus_to_exitcode(os.waitpid(
    os.posix_spawn("/usr/bin/bash", ["bash", "-c", "exit 13"], {}), 0)[1]))


section("multiprocessing (fork)")


def square(x):
    return x * x


def worker(q, n):
    q.put(("worker", n, os.getpid() != parent_pid))


def exits(code):
    sys.exit(code)


def dies():
    os.kill(os.getpid(), signal.SIGKILL)


parent_pid = os.getpid()
ctx = mp.get_context("fork")
with ctx.Pool(2) as pool:
    print("Pool.map:", pool.map(square, range(10)))
    print("Pool.apply_async:", pool.apply_async(square, (12,)).get(timeout=60))
    print("Pool.imap_unordered sorted:", sorted(pool.imap_unordered(square, range(5))))
q = ctx.Queue()
procs = [ctx.Process(target=worker, args=(q, i)) for i in range(3)]
for p in procs:
    p.start()
got = sorted(q.get(timeout=60) for _ in procs)
for p in procs:
    p.join()
print("Queue:", got, [p.exitcode for p in procs])
p = ctx.Process(target=exits, args=(4,))
p.start()
p.join()
print("Process exitcode after sys.exit(4):", p.exitcode)
p = ctx.Process(target=dies)
p.start()
p.join()
print("Process exitcode after SIGKILL:", p.exitcode)
a, b = ctx.Pipe()
p = ctx.Process(target=lambda conn: (conn.send({"x": [1, 2]}), conn.close()), args=(b,))
p.start()
print("Pipe:", a.recv())
p.join()
v = ctx.Value("i", 0)
lock = ctx.Lock()


def add(v, lock, n):
    for _ in range(n):
        with lock:
            v.value += 1


procs = [ctx.Process(target=add, args=(v, lock, 200)) for _ in range(3)]
for p in procs:
    p.start()
for p in procs:
    p.join()
print("shared Value with a Lock:", v.value)

section("threading")
total = 0
total_lock = threading.Lock()


def count(n):
    global total
    for _ in range(n):
        with total_lock:
            total += 1


threads = [threading.Thread(target=count, args=(5000,)) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("4 threads x 5000 increments:", total)
work, results = queue.Queue(), queue.Queue()


def consumer():
    while True:
        item = work.get()
        if item is None:
            return
        results.put(item * 10)


threads = [threading.Thread(target=consumer) for _ in range(3)]
for t in threads:
    t.start()
for i in range(30):
    work.put(i)
for _ in threads:
    work.put(None)
for t in threads:
    t.join()
print("queue of 30 items through 3 threads:", sum(results.get() for _ in range(30)))
ev = threading.Event()
seen = []
t = threading.Thread(target=lambda: (ev.wait(), seen.append("set")))
t.start()
time.sleep(0.05)
ev.set()
t.join()
print("Event:", seen)
cond = threading.Condition()
ready = []


def wait_ready():
    with cond:
        cond.wait_for(lambda: ready)
        ready.append("woken")


t = threading.Thread(target=wait_ready)
t.start()
with cond:
    ready.append("go")
    cond.notify_all()
t.join()
print("Condition:", ready)
local = threading.local()
local.v = "main"
out = []
t = threading.Thread(target=lambda: (setattr(local, "v", "thread"), out.append(local.v)))
t.start()
t.join()
print("threading.local:", local.v, out)
print("thread idents differ:", len({threading.get_ident(), out and t.ident}) == 2,
      "native ids differ:", threading.get_native_id() != t.native_id)
b = threading.Barrier(3)
order = []
def at_barrier(i):
    b.wait()
    order.append(i)
threads = [threading.Thread(target=at_barrier, args=(i,)) for i in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("Barrier:", sorted(order))
timer_fired = []
tm = threading.Timer(0.05, lambda: timer_fired.append(True))
tm.start()
tm.join()
print("Timer:", timer_fired)

section("concurrent.futures")
with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
    print("ThreadPoolExecutor.map:", list(ex.map(square, range(8))))
    futs = [ex.submit(pow, 2, i) for i in range(10)]
    print("as_completed sum:", sum(f.result() for f in concurrent.futures.as_completed(futs)))
    f = ex.submit(lambda: 1 / 0)
    print("exception:", type(f.exception()).__name__)
with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=ctx) as ex:
    print("ProcessPoolExecutor.map:", list(ex.map(square, range(6))))

section("signal")
got = []
signal.signal(signal.SIGUSR1, lambda s, f: got.append(signal.Signals(s).name))
os.kill(os.getpid(), signal.SIGUSR1)
print("handler:", got)
signal.signal(signal.SIGALRM, lambda s, f: got.append("alarm"))
signal.alarm(1)
signal.pause()
print("alarm(1) then pause(): handler ran:", got[-1])
signal.setitimer(signal.ITIMER_REAL, 0.05)
signal.pause()
print("setitimer(ITIMER_REAL, 0.05) then pause(): alarms", got.count("alarm"))
children = []
signal.signal(signal.SIGCHLD, lambda s, f: children.append("SIGCHLD"))
subprocess.run(["true"])
time.sleep(0.05)
print("SIGCHLD received:", bool(children))
signal.signal(signal.SIGCHLD, signal.SIG_DFL)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
os.kill(os.getpid(), signal.SIGUSR2)
print("pending:", [s.name for s in signal.sigpending()])
print("sigwait:", signal.Signals(signal.sigwait({signal.SIGUSR2})).name)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR2})


def raise_in_main():
    time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGINT)


t = threading.Thread(target=raise_in_main)
t.start()
try:
    time.sleep(5)
    print("not interrupted")
except KeyboardInterrupt:
    print("KeyboardInterrupt from SIGINT sent by a thread")
t.join()
r = subprocess.run([sys.executable, "-c", "import signal, os; signal.signal(signal.SIGTERM, signal.SIG_DFL); os.kill(os.getpid(), signal.SIGTERM)"])
print("child python killed by SIGTERM:", r.returncode)
print("done")
