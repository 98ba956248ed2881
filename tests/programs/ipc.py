# Pipes, socket pairs, select/selectors/epoll, eventfd, memfd and asyncio within one
# process (python3 -), for tests/e2e/programs.rs: the output must equal Linux's.
import asyncio
import fcntl
import os
import select
import selectors
import socket

r, w = os.pipe()
os.write(w, b"hello pipe")
print("pipe", os.read(r, 100), select.select([r], [w], [], 0) == ([], [w], []))
os.close(w)
print("eof", os.read(r, 100), select.select([r], [], [], 0)[0] == [r])
os.close(r)

r, w = os.pipe()
print("pipe size", fcntl.fcntl(w, fcntl.F_GETPIPE_SZ), fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 5000))
os.set_blocking(w, False)
total = 0
try:
    while True:
        total += os.write(w, b"a" * 1000)
except BlockingIOError:
    print("full at", total)
print("drained", len(os.read(r, 1 << 20)))
os.close(r)
try:
    os.write(w, b"x")
except BrokenPipeError as e:
    print("no reader:", e.errno)
os.close(w)

a, b = socket.socketpair()
a.sendall(b"ping")
print("socketpair", b.recv(10))
b.sendall(b"pong" * 1000)
n = 0
while n < 4000:
    n += len(a.recv(65536))
print("stream", n)
b.close()
print("peer closed", a.recv(10))
a.close()
for t in (socket.SOCK_DGRAM, socket.SOCK_SEQPACKET):
    x, y = socket.socketpair(socket.AF_UNIX, t)
    x.send(b"one")
    x.send(b"two")
    x.send(b"")
    print(t.name, y.recv(100), y.recv(2), y.recv(100))
    x.close()
    y.close()

sel = selectors.DefaultSelector()
print(type(sel).__name__)
r, w = os.pipe()
sel.register(r, selectors.EVENT_READ, "r")
sel.register(w, selectors.EVENT_WRITE, "w")
print("idle", sorted((k.data, m) for k, m in sel.select(0)))
os.write(w, b"x")
print("ready", sorted((k.data, m) for k, m in sel.select(0)))
sel.close()

ep = select.epoll()
ep.register(r, select.EPOLLIN | select.EPOLLET)
print("epoll et", ep.poll(0), ep.poll(0))
os.write(w, b"y")
print("epoll et again", ep.poll(0))
ep.close()

fd = os.eventfd(3, os.EFD_NONBLOCK)
os.eventfd_write(fd, 4)
print("eventfd", os.eventfd_read(fd))
try:
    os.eventfd_read(fd)
except BlockingIOError as e:
    print("eventfd empty:", e.errno)
os.close(fd)
fd = os.eventfd(2, os.EFD_SEMAPHORE)
print("semaphore", os.eventfd_read(fd), os.eventfd_read(fd))
os.close(fd)

m = os.memfd_create("ipc-test", os.MFD_ALLOW_SEALING)
os.write(m, b"memfd data")
os.lseek(m, 0, 0)
print("memfd", os.read(m, 100), os.fstat(m).st_size)
fcntl.fcntl(m, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE)
try:
    os.write(m, b"more")
except PermissionError as e:
    print("sealed:", e.errno)
os.close(m)


async def main():
    await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    loop.call_soon(fut.set_result, 42)
    print("future", await fut)
    x, y = socket.socketpair()
    x.setblocking(False)
    y.setblocking(False)
    await loop.sock_sendall(x, b"async data")
    print("sock_recv", await loop.sock_recv(y, 100))
    x.close()
    y.close()
    q = asyncio.Queue()

    async def produce():
        for i in range(3):
            await q.put(i)
            await asyncio.sleep(0)

    t = asyncio.create_task(produce())
    print("queue", [await q.get() for _ in range(3)])
    await t
    print("wait_for", await asyncio.wait_for(asyncio.sleep(0.01, "done"), 1))
    # A wake-up from another "thread" of control: call_soon_threadsafe writes the
    # loop's self-pipe (a socket pair).
    fut = loop.create_future()
    loop.call_soon_threadsafe(fut.set_result, "woken")
    print("threadsafe", await fut)


asyncio.run(main())
