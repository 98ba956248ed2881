//! A small speed measurement: an integer loop (ALU ops, a load/store pair and a branch per
//! iteration). Asserts the computed result; prints MIPS (run with `--release --nocapture`
//! for a meaningful figure).

mod cpu_common;
use cpu_common::*;
use rvbox_guest::cpu::Exit;
use std::time::Instant;

#[test]
fn loop_speed() {
    let iters: u64 = if cfg!(debug_assertions) {
        200_000
    } else {
        20_000_000
    };
    let mut m = Machine::new();
    m.cpu.x[9] = DATA;
    let mut c = Code::default();
    c.li(5, iters) // t0 = iterations
        .w(addi(10, 0, 0)) // a0 = 0
        // loop:
        .w(r(0x33, 10, 0, 10, 5, 0)) // add a0, a0, t0
        .w(i(0x13, 11, 4, 10, 0x55)) // xori a1, a0, 0x55
        .w(s(0x23, 3, 9, 11, 8)) // sd a1, 8(s1)
        .w(i(0x03, 12, 3, 9, 8)) // ld a2, 8(s1)
        .w(r(0x33, 10, 0, 10, 12, 0)) // add a0, a0, a2
        .h(0x12fd) // c.addi t0, -1
        .w(b(1, 5, 0, -22)); // bnez t0, loop
    c.w(EBREAK);
    m.load(&c);
    let t = Instant::now();
    let mut exits = 0;
    loop {
        match m.run(10_000_000) {
            Exit::Budget => exits += 1,
            Exit::Ebreak => break,
            e => panic!("{e:?}"),
        }
    }
    let dt = t.elapsed().as_secs_f64();
    // Reference computation.
    let (mut a0, mut t0) = (0u64, iters);
    while t0 != 0 {
        a0 = a0.wrapping_add(t0);
        let a1 = a0 ^ 0x55;
        a0 = a0.wrapping_add(a1);
        t0 -= 1;
    }
    assert_eq!(m.cpu.x[10], a0);
    let n = m.cpu.instret;
    assert_eq!(n, 9 + 7 * iters); // li (8) + addi, then 7 per iteration
    println!(
        "loop: {n} instructions in {dt:.3} s = {:.0} MIPS ({exits} budget exits)",
        n as f64 / dt / 1e6
    );
}
