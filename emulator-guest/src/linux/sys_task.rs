//! The CPU the task runs on and how it is scheduled: sched_*, getcpu, get/setpriority,
//! rseq, membarrier, personality, riscv_hwprobe, and the page residency query mincore.
//!
//! The machine has one CPU (number 0, NUMA node 0) and one task at a time runs on it, so
//! scheduling policies and priorities are recorded and reported but change nothing, and
//! memory barriers between CPUs are trivially complete.

use super::errno::*;
use super::syscalls::SysResult;
use super::Process;
use crate::mem::PAGE_SIZE;

/// Per-task state these calls keep.
#[derive(Debug, Clone, Default)]
pub struct TaskState {
    /// Host time this task ran (its CPU time), but for the turn now running.
    pub cpu_ns: u64,
    /// The registered `struct rseq`: (address, length, signature).
    pub rseq: Option<(u64, u32, u32)>,
    /// `MEMBARRIER_CMD_REGISTER_*` bits registered for this address space.
    pub membarrier: u32,
    pub personality: u32,
    /// Scheduling policy (with `SCHED_RESET_ON_FORK`) and static priority.
    pub policy: u32,
    pub priority: u32,
    pub nice: i32,
    /// `PR_SET_NO_NEW_PRIVS`: set once, kept across `execve` (set-user-ID bits are not
    /// honoured by `execve` anyway, so it changes nothing else yet).
    pub no_new_privs: bool,
}

impl TaskState {
    /// What `execve` keeps: the personality and scheduling; rseq and membarrier
    /// registrations belong to the old image.
    pub fn on_exec(&mut self) {
        self.rseq = None;
        self.membarrier = 0;
    }
}

/// Checks that `pid` names the caller (0 or its own pid).
fn this_task(p: &Process, pid: u64) -> Result<(), Errno> {
    let pid = pid as i32;
    if pid < 0 {
        return Err(EINVAL);
    }
    if pid != 0 && pid != p.pid {
        return Err(ESRCH);
    }
    Ok(())
}

/// getcpu(2).
pub fn getcpu(p: &mut Process, a: &[u64; 6]) -> SysResult {
    for addr in [a[0], a[1]] {
        if addr != 0 {
            p.mem.write_u32(addr, 0).map_err(|_| EFAULT)?;
        }
    }
    Ok(0)
}

const SCHED_OTHER: u32 = 0;
const SCHED_FIFO: u32 = 1;
const SCHED_RR: u32 = 2;
const SCHED_BATCH: u32 = 3;
const SCHED_IDLE: u32 = 5;
const SCHED_DEADLINE: u32 = 6;
const SCHED_RESET_ON_FORK: u32 = 0x4000_0000;

/// The valid static priorities of `policy`, or `EINVAL` for an unknown policy.
fn priority_range(policy: u32) -> Result<(u32, u32), Errno> {
    match policy {
        SCHED_FIFO | SCHED_RR => Ok((1, 99)),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE => Ok((0, 0)),
        _ => Err(EINVAL),
    }
}

fn set_sched(p: &mut Process, policy: u32, param: u64) -> SysResult {
    let base = policy & !SCHED_RESET_ON_FORK;
    if param == 0 || base == SCHED_DEADLINE {
        return Err(EINVAL); // SCHED_DEADLINE takes sched_setattr
    }
    let prio = p.mem.read_u32(param).map_err(|_| EFAULT)?;
    let (lo, hi) = priority_range(base)?;
    if prio < lo || prio > hi {
        return Err(EINVAL);
    }
    if (base == SCHED_FIFO || base == SCHED_RR) && p.creds.euid != 0 {
        return Err(EPERM);
    }
    p.task.policy = policy;
    p.task.priority = prio;
    Ok(0)
}

/// sched_setscheduler(2).
pub fn sched_setscheduler(p: &mut Process, a: &[u64; 6]) -> SysResult {
    this_task(p, a[0])?;
    set_sched(p, a[1] as u32, a[2])
}

/// sched_setparam(2).
pub fn sched_setparam(p: &mut Process, a: &[u64; 6]) -> SysResult {
    this_task(p, a[0])?;
    let policy = p.task.policy;
    set_sched(p, policy, a[1])
}

/// sched_getscheduler(2).
pub fn sched_getscheduler(p: &mut Process, a: &[u64; 6]) -> SysResult {
    this_task(p, a[0])?;
    Ok(p.task.policy as u64)
}

/// sched_getparam(2).
pub fn sched_getparam(p: &mut Process, a: &[u64; 6]) -> SysResult {
    if a[1] == 0 {
        return Err(EINVAL);
    }
    this_task(p, a[0])?;
    let prio = p.task.priority;
    p.mem.write_u32(a[1], prio).map_err(|_| EFAULT)?;
    Ok(0)
}

/// sched_setaffinity(2): the mask must include CPU 0, the only one.
pub fn sched_setaffinity(p: &mut Process, a: &[u64; 6]) -> SysResult {
    this_task(p, a[0])?;
    if a[1] == 0 {
        return Err(EINVAL);
    }
    let first = p.mem.read_u8(a[2]).map_err(|_| EFAULT)?;
    if first & 1 == 0 {
        return Err(EINVAL);
    }
    Ok(0)
}

/// sched_get_priority_max(2).
pub fn sched_get_priority_max(_p: &mut Process, a: &[u64; 6]) -> SysResult {
    Ok(priority_range(a[0] as u32)?.1 as u64)
}

/// sched_get_priority_min(2).
pub fn sched_get_priority_min(_p: &mut Process, a: &[u64; 6]) -> SysResult {
    Ok(priority_range(a[0] as u32)?.0 as u64)
}

/// sched_rr_get_interval(2): 100 ms for `SCHED_RR` (Linux `RR_TIMESLICE`); 0 for the
/// others (FIFO has no slice; a fair-class slice on one CPU is below one tick).
pub fn sched_rr_get_interval(p: &mut Process, a: &[u64; 6]) -> SysResult {
    this_task(p, a[0])?;
    let ns = if p.task.policy & !SCHED_RESET_ON_FORK == SCHED_RR {
        100_000_000
    } else {
        0
    };
    p.mem
        .write_bytes(a[1], &super::abi::ns_to_timespec(ns))
        .map_err(|_| EFAULT)?;
    Ok(0)
}

/// Checks the (which, who) pair of get/setpriority: this process, its group, or its user.
fn prio_target(p: &Process, which: u64, who: u64) -> Result<(), Errno> {
    let who = who as u32;
    let ok = match which {
        0 | 1 => who == 0 || who == p.pid as u32, // PRIO_PROCESS, PRIO_PGRP
        2 => who == 0 || who == p.creds.uid,      // PRIO_USER
        _ => return Err(EINVAL),
    };
    if ok {
        Ok(())
    } else {
        Err(ESRCH)
    }
}

/// getpriority(2): the kernel returns 20 - nice (1..40), libc undoes it.
pub fn getpriority(p: &mut Process, a: &[u64; 6]) -> SysResult {
    prio_target(p, a[0], a[1])?;
    Ok((20 - p.task.nice) as u64)
}

/// setpriority(2).
pub fn setpriority(p: &mut Process, a: &[u64; 6]) -> SysResult {
    prio_target(p, a[0], a[1])?;
    let nice = (a[2] as i32).clamp(-20, 19);
    if nice < p.task.nice && p.creds.euid != 0 {
        return Err(EACCES);
    }
    p.task.nice = nice;
    Ok(0)
}

/// personality(2): recorded and returned; 0xffffffff only asks. The flags change nothing
/// here (addresses are never randomized, for one).
pub fn personality(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let old = p.task.personality;
    let new = a[0] as u32;
    if new != u32::MAX {
        p.task.personality = new;
    }
    Ok(old as u64)
}

/// rseq(2): restartable sequences. Registration writes the CPU numbers (always 0) into the
/// area, as the kernel does on return to user space. A critical section can never be
/// interrupted here (one task, no signal handlers run yet), so nothing is ever aborted.
pub fn rseq(p: &mut Process, a: &[u64; 6]) -> SysResult {
    const FLAG_UNREGISTER: u64 = 1;
    const ORIG_SIZE: u32 = 32;
    /// `offsetof(struct rseq, end)`: the fields the kernel knows.
    const FEATURE_SIZE: u32 = 28;
    const CPU_ID_UNINITIALIZED: u32 = u32::MAX;
    let (addr, len, flags, sig) = (a[0], a[1] as u32, a[2], a[3] as u32);
    if flags & FLAG_UNREGISTER != 0 {
        if flags & !FLAG_UNREGISTER != 0 {
            return Err(EINVAL);
        }
        let Some((cur, cur_len, cur_sig)) = p.task.rseq else {
            return Err(EINVAL);
        };
        if cur != addr || cur_len != len {
            return Err(EINVAL);
        }
        if cur_sig != sig {
            return Err(EPERM);
        }
        // cpu_id_start, cpu_id, node_id, mm_cid back to "unregistered".
        for (off, v) in [(0, 0), (4, CPU_ID_UNINITIALIZED), (20, 0), (24, 0)] {
            p.mem.write_u32(addr + off, v).map_err(|_| EFAULT)?;
        }
        p.task.rseq = None;
        return Ok(0);
    }
    if flags != 0 {
        return Err(EINVAL);
    }
    if let Some((cur, cur_len, cur_sig)) = p.task.rseq {
        if cur != addr || cur_len != len {
            return Err(EINVAL);
        }
        if cur_sig != sig {
            return Err(EPERM);
        }
        return Err(EBUSY);
    }
    if len < ORIG_SIZE || !addr.is_multiple_of(32) || (len != ORIG_SIZE && len < FEATURE_SIZE) {
        return Err(EINVAL);
    }
    let mut area = vec![0u8; len as usize];
    p.mem.read_bytes(addr, &mut area).map_err(|_| EFAULT)?;
    // cpu_id_start, cpu_id, node_id, mm_cid: CPU 0, node 0, concurrency id 0.
    for off in [0, 4, 20, 24] {
        p.mem.write_u32(addr + off, 0).map_err(|_| EFAULT)?;
    }
    p.task.rseq = Some((addr, len, sig));
    Ok(0)
}

/// membarrier(2): with one CPU every barrier is complete when it is asked for.
pub fn membarrier(p: &mut Process, a: &[u64; 6]) -> SysResult {
    const QUERY: u64 = 0;
    const GLOBAL: u64 = 1;
    const GLOBAL_EXPEDITED: u64 = 2;
    const REGISTER_GLOBAL_EXPEDITED: u64 = 4;
    const PRIVATE_EXPEDITED: u64 = 8;
    const REGISTER_PRIVATE_EXPEDITED: u64 = 16;
    const PRIVATE_EXPEDITED_SYNC_CORE: u64 = 32;
    const REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: u64 = 64;
    const PRIVATE_EXPEDITED_RSEQ: u64 = 128;
    const REGISTER_PRIVATE_EXPEDITED_RSEQ: u64 = 256;
    const GET_REGISTRATIONS: u64 = 512;
    const FLAG_CPU: u64 = 1;
    let (cmd, flags) = (a[0], a[1] as u32 as u64);
    if cmd == PRIVATE_EXPEDITED_RSEQ {
        if flags & !FLAG_CPU != 0 {
            return Err(EINVAL);
        }
    } else if flags != 0 {
        return Err(EINVAL);
    }
    let registered = |p: &Process, r: u64| p.task.membarrier as u64 & r != 0;
    match cmd {
        QUERY => Ok(1023),
        GLOBAL | GLOBAL_EXPEDITED => Ok(0),
        REGISTER_GLOBAL_EXPEDITED
        | REGISTER_PRIVATE_EXPEDITED
        | REGISTER_PRIVATE_EXPEDITED_SYNC_CORE
        | REGISTER_PRIVATE_EXPEDITED_RSEQ => {
            p.task.membarrier |= cmd as u32;
            Ok(0)
        }
        PRIVATE_EXPEDITED if registered(p, REGISTER_PRIVATE_EXPEDITED) => Ok(0),
        PRIVATE_EXPEDITED_SYNC_CORE if registered(p, REGISTER_PRIVATE_EXPEDITED_SYNC_CORE) => {
            // Code another thread wrote becomes visible to instruction fetch.
            p.cpu.flush_icache();
            Ok(0)
        }
        PRIVATE_EXPEDITED_RSEQ if registered(p, REGISTER_PRIVATE_EXPEDITED_RSEQ) => Ok(0),
        PRIVATE_EXPEDITED | PRIVATE_EXPEDITED_SYNC_CORE | PRIVATE_EXPEDITED_RSEQ => Err(EPERM),
        GET_REGISTRATIONS => Ok(p.task.membarrier as u64),
        _ => Err(EINVAL),
    }
}

/// What `riscv_hwprobe` reports for `key` on our CPU (RV64GC, one hart): `None` for a
/// key this kernel does not know.
pub fn hwprobe_value(key: i64) -> Option<u64> {
    const IMA_FD: u64 = 1 << 0;
    const IMA_C: u64 = 1 << 1;
    const EXT_ZCA: u64 = 1 << 43;
    const EXT_ZCD: u64 = 1 << 45;
    const MISALIGNED_FAST: u64 = 3;
    Some(match key {
        0..=2 => 0, // mvendorid, marchid, mimpid: not a vendor's core
        3 => 1,     // BASE_BEHAVIOR_IMA
        // F and D; C, which is Zca plus Zcd with D (Zcf is RV32 only).
        4 => IMA_FD | IMA_C | EXT_ZCA | EXT_ZCD,
        // CPUPERF_0 and MISALIGNED_SCALAR_PERF: the interpreter does misaligned loads and
        // stores as fast as aligned ones.
        5 | 9 => MISALIGNED_FAST,
        6 => 0, // ZICBOZ_BLOCK_SIZE: no Zicboz
        7 => crate::mem::USER_END - 1,
        8 => 10_000_000, // the time CSR counts at 10 MHz
        _ => return None,
    })
}

/// riscv_hwprobe(2).
pub fn riscv_hwprobe(p: &mut Process, a: &[u64; 6]) -> SysResult {
    const WHICH_CPUS: u32 = 1;
    let (pairs, count, setsize, cpus, flags) = (a[0], a[1], a[2], a[3], a[4] as u32);
    let count = count.min(1 << 20);
    if flags & WHICH_CPUS != 0 {
        // Which of the given CPUs have all the given values: ours, or none.
        if flags != WHICH_CPUS || setsize == 0 || cpus == 0 {
            return Err(EINVAL);
        }
        let first = p.mem.read_u8(cpus).map_err(|_| EFAULT)?;
        let mut all_match = true;
        let mut unknown = false;
        for i in 0..count {
            let at = pairs + i * 16;
            let key = p.mem.read_u64(at).map_err(|_| EFAULT)? as i64;
            let want = p.mem.read_u64(at + 8).map_err(|_| EFAULT)?;
            match hwprobe_value(key) {
                None => {
                    unknown = true;
                    p.mem.write_u64(at, u64::MAX).map_err(|_| EFAULT)?;
                    p.mem.write_u64(at + 8, 0).map_err(|_| EFAULT)?;
                }
                // Bitmask keys match when all wanted bits are there; the rest by value.
                Some(v) if key == 4 => all_match &= want & !v == 0,
                Some(v) => all_match &= v == want,
            }
        }
        // An empty set means all online CPUs.
        let mut mask = vec![0u8; setsize.min(128) as usize];
        p.mem.read_bytes(cpus, &mut mask).map_err(|_| EFAULT)?;
        let empty = mask.iter().all(|&b| b == 0);
        let keep = (first & 1 != 0 || empty) && all_match && !unknown;
        mask.fill(0);
        mask[0] = keep as u8;
        p.mem.write_bytes(cpus, &mask).map_err(|_| EFAULT)?;
        return Ok(0);
    }
    if flags != 0 {
        return Err(EINVAL);
    }
    if setsize != 0 || cpus != 0 {
        let mut mask = vec![0u8; setsize.min(128) as usize];
        p.mem.read_bytes(cpus, &mut mask).map_err(|_| EFAULT)?;
        // At least one online CPU (ours is CPU 0) must be in the set.
        if mask.first().is_none_or(|b| b & 1 == 0) {
            return Err(EINVAL);
        }
    }
    for i in 0..count {
        let at = pairs + i * 16;
        let key = p.mem.read_u64(at).map_err(|_| EFAULT)? as i64;
        let (k, v) = match hwprobe_value(key) {
            Some(v) => (key as u64, v),
            None => (u64::MAX, 0),
        };
        p.mem.write_u64(at, k).map_err(|_| EFAULT)?;
        p.mem.write_u64(at + 8, v).map_err(|_| EFAULT)?;
    }
    Ok(0)
}

/// mincore(2): every mapped page counts as resident (pages are in memory or read from
/// the image in memory; nothing is ever paged out).
pub fn mincore(p: &mut Process, a: &[u64; 6]) -> SysResult {
    let (addr, len, vec) = (a[0], a[1], a[2]);
    if !addr.is_multiple_of(PAGE_SIZE) {
        return Err(EINVAL);
    }
    let pages = len.div_ceil(PAGE_SIZE);
    if addr
        .checked_add(pages * PAGE_SIZE)
        .is_none_or(|e| e > crate::mem::USER_END)
    {
        return Err(ENOMEM);
    }
    for i in 0..pages {
        let page = addr + i * PAGE_SIZE;
        if !p.mm.is_mapped(page, PAGE_SIZE) {
            return Err(ENOMEM);
        }
        p.mem.write_u8(vec + i, 1).map_err(|_| EFAULT)?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hwprobe_keys() {
        assert_eq!(hwprobe_value(3), Some(1));
        let ext = hwprobe_value(4).unwrap();
        assert_eq!(ext & 3, 3, "FD and C");
        assert_eq!(ext & (1 << 3 | 1 << 4 | 1 << 5), 0, "no Zba/Zbb/Zbs");
        assert_eq!(hwprobe_value(5), Some(3));
        assert_eq!(hwprobe_value(1000), None);
        assert_eq!(hwprobe_value(-1), None);
    }
}
