# CPU time as a process sees it: ITIMER_VIRTUAL and ITIMER_PROF fire while it computes,
# sleeping is no CPU time, a reaped child's time shows in RUSAGE_CHILDREN and times().
import signal, time, os, resource
n = {"v": 0, "p": 0}
def hv(s, f): n["v"] += 1
def hp(s, f): n["p"] += 1
signal.signal(signal.SIGVTALRM, hv)
signal.signal(signal.SIGPROF, hp)
signal.setitimer(signal.ITIMER_VIRTUAL, 0.01, 0.01)
signal.setitimer(signal.ITIMER_PROF, 0.02, 0.02)
t = time.process_time()
while time.process_time() - t < 0.3: pass
signal.setitimer(signal.ITIMER_VIRTUAL, 0)
signal.setitimer(signal.ITIMER_PROF, 0)
print("virtual fired", n["v"] > 5, "prof fired", n["p"] > 3)
time.sleep(0.2)
print("sleep is not cpu", time.process_time() - t < 0.45)
pid = os.fork()
if pid == 0:
    t = time.process_time()
    while time.process_time() - t < 0.2: pass
    os._exit(0)
os.waitpid(pid, 0)
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print("children", ru.ru_utime >= 0.15, os.times().children_user >= 0.15)
