# What a process reads of itself and its file system: the thread count in /proc (which
# CPython reads to warn about a fork from a thread), and disk usage of the root.
import os, shutil, threading, time, warnings
def threads():
    stat = open('/proc/self/stat').read().rsplit(')', 1)[1].split()
    status = [l for l in open('/proc/self/status') if l.startswith('Threads:')][0]
    return int(stat[17]), int(status.split()[1])
before = threads()
go = threading.Event()
t = threading.Thread(target=go.wait)
t.start()
during = threads()
print("a thread more in status:", during[1] - before[1])
print("a thread more in stat:", during[0] - before[0])
with warnings.catch_warnings(record=True) as ws:
    warnings.simplefilter("always", DeprecationWarning)
    pid = os.fork()
    if pid == 0:
        os._exit(0)
os.waitpid(pid, 0)
print("fork warns:", [str(w.message).split('(')[0].strip() for w in ws])
go.set()
t.join()
# join() returns when the thread's Python work is done, a moment before the kernel thread
# is gone (on Linux too): wait for the count to come back, as long as it takes.
for _ in range(500):
    after = threads()
    if after == before:
        break
    time.sleep(0.01)
print("back:", after == before)
u = shutil.disk_usage('/')
print("root used:", u.used > 0, "free <= total:", u.free <= u.total)
# CLONE_FS: a thread's chdir and umask are its process's; a child's are its own.
def move():
    os.chdir('/tmp')
    os.umask(0o077)
t = threading.Thread(target=move)
t.start()
t.join()
print("after the thread:", os.getcwd(), oct(os.umask(0o022)))
pid = os.fork()
if pid == 0:
    os.chdir('/')
    os.umask(0o007)
    os._exit(0)
os.waitpid(pid, 0)
print("after the child:", os.getcwd(), oct(os.umask(0o022)))
