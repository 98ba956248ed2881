//! One group of guest code (a function, or a piece of one) to one Wasm function.
//!
//! The group is decoded from its first byte on, one instruction after another (decoding
//! from a pc is what the hart does, so a block translated from a leader is exactly what
//! the hart would run from there, whatever the discovery got right or wrong). It splits
//! into basic blocks at branch targets and after every branch, jump and untranslated op.
//! The function body is the classic shape for a control-flow graph in Wasm:
//!
//! ```text
//! block $exit
//!   loop $top
//!     block $B(n-1) ... block $B0
//!       br_table (entry) $B0 .. $B(n-1)
//!     end  B0's code
//!     ...
//!   end  B(n-1)'s code
//! end  write back, return status
//! ```
//!
//! so a forward branch to block j is a `br` to the end of `$Bj`, a backward branch sets
//! the entry and goes round `$top` (checking the budget), and falling through needs
//! nothing. A guest register lives in a local within a basic block: loaded from `Cpu` at
//! its first read there, stored back before control leaves the block if it was written
//! (at its end, and on every exit path out of its middle). Blocks can be entered from
//! anywhere, so nothing is live across them: with registers in locals for the whole
//! function Cranelift spilled most of them, and every entry loaded and every exit stored
//! all of them (a busybox shell loop: 2.23 s, now 1.88 s). Semantics mirror the
//! interpreter (`emulator-guest/src/cpu/exec.rs`, `sem.rs`); the differential tests hold
//! the two together.

use rvbox_guest::cpu::aot_abi as abi;
use rvbox_guest::cpu::decode::{decode, insn_len, Insn, Op};
use std::collections::HashMap;
use wasm_encoder::{BlockType, Function, InstructionSink, MemArg, ValType};

// Locals: the parameters, then x1..x31 at REG0 + r, then scratch.
const CPU: u32 = 0;
const TLBS: u32 = 1;
const ENTRY: u32 = 2;
const BIAS: u32 = 3;
const BUDGET: u32 = 4;
const REG0: u32 = 4; // x(r) is local REG0 + r, r = 1..31
const RAN: u32 = 36;
const PC_OUT: u32 = 37;
const STATUS: u32 = 38; // i32
const ADDR: u32 = 39;
const ENT: u32 = 40; // i32
const T0: u32 = 41;
const T1: u32 = 42;
const T2: u32 = 43;
const T3: u32 = 44;

/// A translated group.
pub struct Group {
    /// Offsets of its blocks from the group's start (ascending; block k is entry k).
    pub blocks: Vec<u16>,
    /// The encoded function body (as a code section entry, size first).
    pub body: Vec<u8>,
    /// Instructions translated (not counting untranslated ops that only exit).
    pub insns: usize,
}

struct Ins {
    d: Insn,
    pc: u64,
    next: u64,
}

/// Ops the translator emits code for; any other op makes translated code leave for the
/// interpreter just before it (atomics, CSRs, FP computations, system instructions).
fn translated(op: Op) -> bool {
    use rvbox_guest::cpu::ops::Form;
    let info = op.info();
    !op.is_fp()
        && !matches!(
            info.form,
            Form::None | Form::Csr | Form::Csri | Form::Lr | Form::Amo
        )
        || op == Op::Nop
}

/// Translates the start of `code` (at ELF address `vaddr`): up to `max` bytes, ending at an
/// instruction boundary. Returns the bytes it covers and the function (`None` if nothing
/// in them is worth one).
/// `targets` (sorted) are addresses control may come to from elsewhere: they start
/// blocks. `ty` is the module's type index of translated functions (for the tail calls
/// through the jump cache).
pub fn group(
    code: &[u8],
    vaddr: u64,
    max: usize,
    targets: &[u64],
    ty: u32,
) -> (usize, Option<Group>) {
    let (len, g) = group_inner(code, vaddr, max, targets, ty);
    (len.max(2).min(code.len()), g)
}

/// The instruction at byte `at` of `code` and its length, if it lies wholly inside.
fn fetch(code: &[u8], at: usize) -> Option<(u32, usize)> {
    let lo = u16::from_le_bytes([*code.get(at)?, *code.get(at + 1)?]);
    let n = insn_len(lo) as usize;
    let bytes = code.get(at..at + n)?;
    Some(match n {
        2 => (lo as u32, 2),
        _ => (u32::from_le_bytes(bytes.try_into().ok()?), n),
    })
}

/// The direct branch and jump targets in `code` (at ELF address `vaddr`), decoded
/// straight through.
pub fn direct_targets(code: &[u8], vaddr: u64, out: &mut Vec<u64>) {
    let mut at = 0usize;
    while let Some((bits, n)) = fetch(code, at) {
        let d = decode(bits);
        if d.op.is_branch() || d.op == Op::Jal {
            out.push((vaddr + at as u64).wrapping_add(d.imm as u64));
        }
        at += n;
    }
}

fn group_inner(
    code: &[u8],
    vaddr: u64,
    max: usize,
    targets: &[u64],
    ty: u32,
) -> (usize, Option<Group>) {
    // Decode straight through.
    let mut ins = Vec::new();
    let mut at = 0usize;
    let code = &code[..code.len().min(max)];
    while let Some((bits, n)) = fetch(code, at) {
        let pc = vaddr + at as u64;
        let mut d = decode(bits);
        if d.op == Op::Auipc {
            // As the interpreter's block builder: an absolute value, here bias-relative.
            d.imm = pc.wrapping_add(d.imm as u64) as i64;
        }
        ins.push(Ins {
            d,
            pc,
            next: pc + n as u64,
        });
        at += n;
    }
    if ins.is_empty() {
        return (at, None);
    }
    let index: HashMap<u64, usize> = ins.iter().enumerate().map(|(i, x)| (x.pc, i)).collect();

    // Leaders.
    let mut leader = vec![false; ins.len() + 1];
    leader[0] = true;
    let end = ins.last().map_or(vaddr, |x| x.next);
    let from = targets.partition_point(|&t| t < vaddr);
    for t in targets[from..].iter().take_while(|&&t| t < end) {
        if let Some(&j) = index.get(t) {
            leader[j] = true;
        }
    }
    for (i, x) in ins.iter().enumerate() {
        let op = x.d.op;
        if op.is_branch() || op == Op::Jal {
            let t = x.pc.wrapping_add(x.d.imm as u64);
            if let Some(&j) = index.get(&t) {
                leader[j] = true;
            }
        }
        if op.is_branch() || op.ends_block() || !translated(op) {
            leader[i + 1] = true;
        }
    }
    let starts: Vec<usize> = (0..ins.len()).filter(|&i| leader[i]).collect();
    let block_of: HashMap<usize, usize> = starts.iter().enumerate().map(|(b, &i)| (i, b)).collect();
    let n = starts.len();
    if ins.iter().all(|x| !translated(x.d.op)) {
        return (at, None);
    }

    let mut f = Function::new([
        (31, ValType::I64),
        (2, ValType::I64),
        (1, ValType::I32),
        (1, ValType::I64),
        (1, ValType::I32),
        (4, ValType::I64),
    ]);
    let mut e = Emitter {
        s: f.instructions(),
        n,
        block: 0,
        depth: 0,
        loaded: [false; 32],
        dirty: [false; 32],
    };
    e.s.i64_const(0).local_set(RAN);
    e.s.block(BlockType::Empty); // $exit
    e.s.loop_(BlockType::Empty); // $top
    for _ in 0..n {
        e.s.block(BlockType::Empty);
    }
    e.s.local_get(ENTRY).br_table(0..n as u32, 0);
    let mut count = 0;
    for (b, &first) in starts.iter().enumerate() {
        e.s.end(); // of $Bb
        e.block = b;
        // Control may come here from anywhere: the registers are in `Cpu`.
        e.loaded = [false; 32];
        e.dirty = [false; 32];
        let last = starts.get(b + 1).copied().unwrap_or(ins.len());
        let len = (last - first) as i64;
        e.s.local_get(RAN).i64_const(len).i64_add().local_set(RAN);
        // Whether control can go on past the block's last instruction (not after a
        // jump or an exit; after a branch not taken, it can).
        let mut goes_on = true;
        for (k, x) in ins[first..last].iter().enumerate() {
            let left = len - k as i64; // instructions of the block not yet run
            if !translated(x.d.op) {
                e.exit(x.pc, abi::INTERP, left);
                goes_on = false;
                break;
            }
            count += 1;
            e.insn(x, left, &index, &block_of);
            goes_on = !matches!(x.d.op, Op::Jal | Op::Jalr);
        }
        if goes_on {
            e.flush();
            if b + 1 == n {
                // Off the end of the group.
                e.exit(ins[last - 1].next, abi::JUMP, 0);
            }
        }
    }
    e.s.end(); // $top
    e.s.end(); // $exit
    e.s.local_get(CPU)
        .local_get(PC_OUT)
        .i64_store(mem(abi::PC, 3));
    e.s.local_get(CPU)
        .local_get(CPU)
        .i64_load(mem(abi::INSTRET, 3))
        .local_get(RAN)
        .i64_add()
        .i64_store(mem(abi::INSTRET, 3));
    e.chain(ty);
    e.s.local_get(STATUS);
    e.s.end();
    let mut body = Vec::new();
    wasm_encoder::Encode::encode(&f, &mut body);
    let g = Group {
        blocks: starts.iter().map(|&i| (ins[i].pc - vaddr) as u16).collect(),
        body,
        insns: count,
    };
    (at, Some(g))
}

fn mem(offset: u64, align: u32) -> MemArg {
    MemArg {
        offset,
        align,
        memory_index: 0,
    }
}

struct Emitter<'a> {
    s: InstructionSink<'a>,
    n: usize,
    /// The block being emitted.
    block: usize,
    /// `if`s open around the current point.
    depth: u32,
    /// Registers whose local holds their value at this point of the block (else it is
    /// in `Cpu` only), and those whose local is newer than `Cpu`.
    loaded: [bool; 32],
    dirty: [bool; 32],
}

impl Emitter<'_> {
    fn exit_depth(&self) -> u32 {
        (self.n - self.block) as u32 + self.depth
    }
    fn top_depth(&self) -> u32 {
        (self.n - 1 - self.block) as u32 + self.depth
    }

    /// Pushes register `r`: from `Cpu` the first time in a block, then from its local.
    fn get(&mut self, r: u8) {
        let i = r as usize & 31;
        if r == 0 {
            self.s.i64_const(0);
        } else if self.loaded[i] {
            self.s.local_get(REG0 + r as u32);
        } else {
            self.s
                .local_get(CPU)
                .i64_load(mem(abi::X + 8 * r as u64, 3))
                .local_tee(REG0 + r as u32);
            self.loaded[i] = true;
        }
    }
    /// Stores the value on the stack in `r` (dropped for x0); `Cpu` gets it at `flush`.
    fn set(&mut self, r: u8) {
        let i = r as usize & 31;
        if r == 0 {
            self.s.drop();
        } else {
            self.s.local_set(REG0 + r as u32);
            self.loaded[i] = true;
            self.dirty[i] = true;
        }
    }
    /// Stores the registers written since the last flush in `Cpu` (before control leaves
    /// the block or the function; the stack is left as it is).
    fn write_back(&mut self) {
        for r in (1..32).filter(|&r| self.dirty[r]) {
            self.s
                .local_get(CPU)
                .local_get(REG0 + r as u32)
                .i64_store(mem(abi::X + 8 * r as u64, 3));
        }
    }
    /// `write_back`, after which the registers count as clean.
    fn flush(&mut self) {
        self.write_back();
        self.dirty = [false; 32];
    }

    /// Leaves the function for `pc` (an ELF address) with `status`, with `left` of the
    /// block's instructions not run.
    fn exit(&mut self, pc: u64, status: u32, left: i64) {
        self.s
            .i64_const(pc as i64)
            .local_get(BIAS)
            .i64_add()
            .local_set(PC_OUT);
        self.exit_to_pc_out(status, left);
    }
    fn exit_to_pc_out(&mut self, status: u32, left: i64) {
        self.write_back();
        if left != 0 {
            self.s
                .local_get(RAN)
                .i64_const(left)
                .i64_sub()
                .local_set(RAN);
        }
        self.s.i32_const(status as i32).local_set(STATUS);
        let d = self.exit_depth();
        self.s.br(d);
    }

    /// After a jump out (`STATUS` = `JUMP`, state written back) with budget left: if the
    /// jump cache knows translated code at `PC_OUT`, tail-calls it with the rest of the
    /// budget (`aot_abi`).
    fn chain(&mut self, ty: u32) {
        let s = &mut self.s;
        s.local_get(STATUS)
            .i32_eqz()
            .local_get(RAN)
            .local_get(BUDGET)
            .i64_lt_u()
            .i32_and()
            .if_(BlockType::Empty);
        // ENT = the first entry of PC_OUT's set, or the second if the first is not it.
        s.local_get(CPU)
            .i32_load(mem(abi::JUMPS, 2))
            .local_get(PC_OUT)
            .i64_const(abi::JUMP_HASH as i64)
            .i64_mul()
            .i64_const(64 - abi::JUMP_SETS.trailing_zeros() as i64)
            .i64_shr_u()
            .i32_wrap_i64()
            .i32_const((abi::JUMP_ENTRY * abi::JUMP_WAYS).trailing_zeros() as i32)
            .i32_shl()
            .i32_add()
            .local_tee(ENT)
            .i64_load(mem(0, 3))
            .local_get(PC_OUT)
            .i64_ne()
            .if_(BlockType::Empty);
        s.local_get(ENT)
            .i32_const(abi::JUMP_ENTRY as i32)
            .i32_add()
            .local_set(ENT);
        s.end();
        s.local_get(ENT)
            .i64_load(mem(0, 3))
            .local_get(PC_OUT)
            .i64_eq()
            .if_(BlockType::Empty);
        s.local_get(CPU)
            .local_get(TLBS)
            .local_get(ENT)
            .i32_load(mem(abi::JUMP_BLOCK, 2))
            .local_get(ENT)
            .i64_load(mem(abi::JUMP_BIAS, 3))
            .local_get(BUDGET)
            .local_get(RAN)
            .i64_sub()
            .local_get(ENT)
            .i32_load(mem(abi::JUMP_FUNC, 2))
            .return_call_indirect(0, ty);
        s.end().end();
    }

    /// Goes to ELF address `t` (a branch or jump target): within the group as Wasm
    /// control flow, else out.
    fn goto(&mut self, t: u64, index: &HashMap<u64, usize>, block_of: &HashMap<usize, usize>) {
        match index.get(&t).and_then(|i| block_of.get(i)) {
            Some(&j) if j > self.block => {
                let d = (j - self.block - 1) as u32 + self.depth;
                self.s.br(d);
            }
            Some(&j) => {
                // Backward: round the dispatch loop, if the budget allows.
                self.s.local_get(RAN).local_get(BUDGET).i64_ge_u();
                self.s.if_(BlockType::Empty);
                self.depth += 1;
                self.exit(t, abi::JUMP, 0);
                self.depth -= 1;
                self.s.end();
                self.s.i32_const(j as i32).local_set(ENTRY);
                let d = self.top_depth();
                self.s.br(d);
            }
            None => self.exit(t, abi::JUMP, 0),
        }
    }

    /// Leaves the address of a memory access of `n` bytes on the stack, or leaves the
    /// function for the interpreter if the TLB (`write`: the write TLB) cannot serve it
    /// (a miss, or an access across a page end).
    fn host_addr(&mut self, x: &Ins, n: u64, write: bool, left: i64) {
        let d = &x.d;
        self.get(d.rs1);
        self.s.i64_const(d.imm).i64_add().local_set(ADDR);
        // The slot's offset, ((a >> 12) ^ (a >> 23)) % 2048 * 16, as
        // ((a >> 8) ^ (a >> 19)) & (2047 << 4): one shift fewer.
        let scale = abi::TLB_ENTRY.trailing_zeros() as u64;
        self.s
            .local_get(ADDR)
            .i64_const((abi::PAGE_SHIFT - scale) as i64)
            .i64_shr_u()
            .local_get(ADDR)
            .i64_const((abi::PAGE_SHIFT + abi::TLB_SLOTS.trailing_zeros() as u64 - scale) as i64)
            .i64_shr_u()
            .i64_xor()
            .i32_wrap_i64()
            .i32_const(((abi::TLB_SLOTS - 1) << scale) as i32)
            .i32_and()
            .local_get(TLBS)
            .i32_add()
            .local_tee(ENT);
        let tlb = if write { abi::TLB_WRITE } else { 0 };
        let page_mask = !((1i64 << abi::PAGE_SHIFT) - 1);
        // One compare for an aligned access (which cannot cross a page).
        self.s
            .i64_load(mem(tlb, 3))
            .local_get(ADDR)
            .i64_const(page_mask | (n as i64 - 1))
            .i64_and()
            .i64_ne();
        self.s.if_(BlockType::Empty);
        self.depth += 1;
        if n > 1 {
            // Misaligned (memcpy's tails, packed data): fine within the page.
            self.s
                .local_get(ENT)
                .i64_load(mem(tlb, 3))
                .local_get(ADDR)
                .i64_const(page_mask)
                .i64_and()
                .i64_ne()
                .local_get(ADDR)
                .i64_const(!page_mask)
                .i64_and()
                .i64_const((1i64 << abi::PAGE_SHIFT) - n as i64)
                .i64_gt_u()
                .i32_or();
            self.s.if_(BlockType::Empty);
            self.depth += 1;
        }
        self.exit(x.pc, abi::INTERP, left);
        if n > 1 {
            self.depth -= 1;
            self.s.end();
        }
        self.depth -= 1;
        self.s.end();
        self.s
            .local_get(ENT)
            .i32_load(mem(
                abi::TLB_BIAS + if write { abi::TLB_WRITE } else { 0 },
                2,
            ))
            .local_get(ADDR)
            .i32_wrap_i64()
            .i32_add();
    }

    /// Emits one translated instruction.
    fn insn(
        &mut self,
        x: &Ins,
        left: i64,
        index: &HashMap<u64, usize>,
        block_of: &HashMap<usize, usize>,
    ) {
        use Op::*;
        let d = x.d;
        let m0 = mem(0, 0);
        macro_rules! rr {
            ($($i:ident)*) => {{
                self.get(d.rs1);
                self.get(d.rs2);
                $(self.s.$i();)*
                self.set(d.rd);
            }};
        }
        macro_rules! ri {
            ($($i:ident)*) => {{
                self.get(d.rs1);
                self.s.i64_const(d.imm);
                $(self.s.$i();)*
                self.set(d.rd);
            }};
        }
        macro_rules! riw {
            ($i:ident) => {{
                self.get(d.rs1);
                self.s
                    .i32_wrap_i64()
                    .i32_const(d.imm as i32)
                    .$i()
                    .i64_extend_i32_s();
                self.set(d.rd);
            }};
        }
        macro_rules! rrw {
            ($i:ident) => {{
                self.get(d.rs1);
                self.s.i32_wrap_i64();
                self.get(d.rs2);
                self.s.i32_wrap_i64().$i().i64_extend_i32_s();
                self.set(d.rd);
            }};
        }
        macro_rules! load {
            ($n:expr, $i:ident) => {{
                self.host_addr(x, $n, false, left);
                self.s.$i(m0);
                self.set(d.rd);
            }};
        }
        macro_rules! store {
            ($n:expr, $i:ident) => {{
                self.host_addr(x, $n, true, left);
                self.get(d.rs2);
                self.s.$i(m0);
            }};
        }
        macro_rules! branch {
            ($i:ident) => {{
                self.get(d.rs1);
                self.get(d.rs2);
                self.s.$i();
                // The block ends here, taken or not.
                self.flush();
                self.s.if_(BlockType::Empty);
                self.depth += 1;
                self.goto(x.pc.wrapping_add(d.imm as u64), index, block_of);
                self.depth -= 1;
                self.s.end();
            }};
        }
        match d.op {
            Nop => {}
            Li => {
                self.s.i64_const(d.imm);
                self.set(d.rd);
            }
            Auipc => {
                self.s.i64_const(d.imm).local_get(BIAS).i64_add();
                self.set(d.rd);
            }
            Addi => ri!(i64_add),
            Slti => ri!(i64_lt_s i64_extend_i32_u),
            Sltiu => ri!(i64_lt_u i64_extend_i32_u),
            Xori => ri!(i64_xor),
            Ori => ri!(i64_or),
            Andi => ri!(i64_and),
            Slli => ri!(i64_shl),
            Srli => ri!(i64_shr_u),
            Srai => ri!(i64_shr_s),
            Addiw => riw!(i32_add),
            Slliw => riw!(i32_shl),
            Srliw => riw!(i32_shr_u),
            Sraiw => riw!(i32_shr_s),
            Add => rr!(i64_add),
            Sub => rr!(i64_sub),
            Sll => rr!(i64_shl),
            Slt => rr!(i64_lt_s i64_extend_i32_u),
            Sltu => rr!(i64_lt_u i64_extend_i32_u),
            Xor => rr!(i64_xor),
            Srl => rr!(i64_shr_u),
            Sra => rr!(i64_shr_s),
            Or => rr!(i64_or),
            And => rr!(i64_and),
            Addw => rrw!(i32_add),
            Subw => rrw!(i32_sub),
            Sllw => rrw!(i32_shl),
            Srlw => rrw!(i32_shr_u),
            Sraw => rrw!(i32_shr_s),
            Mul => rr!(i64_mul),
            Mulw => rr!(i64_mul i64_extend32_s),
            Mulhu | Mulh | Mulhsu => self.mulh(d),
            Div | Divu | Rem | Remu | Divw | Divuw | Remw | Remuw => self.div(d),
            Lb => load!(1, i64_load8_s),
            Lh => load!(2, i64_load16_s),
            Lw => load!(4, i64_load32_s),
            Ld => load!(8, i64_load),
            Lbu => load!(1, i64_load8_u),
            Lhu => load!(2, i64_load16_u),
            Lwu => load!(4, i64_load32_u),
            Sb => store!(1, i64_store8),
            Sh => store!(2, i64_store16),
            Sw => store!(4, i64_store32),
            Sd => store!(8, i64_store),
            Flw | Fld => {
                let n = if d.op == Flw { 4 } else { 8 };
                self.host_addr(x, n, false, left);
                if d.op == Flw {
                    // NaN-boxed.
                    self.s
                        .i64_load32_u(m0)
                        .i64_const(0xffff_ffff_0000_0000u64 as i64)
                        .i64_or();
                } else {
                    self.s.i64_load(m0);
                }
                self.s.local_set(T0);
                self.s
                    .local_get(CPU)
                    .local_get(T0)
                    .i64_store(mem(abi::F + 8 * d.rd as u64, 3));
            }
            Fsw | Fsd => {
                let n = if d.op == Fsw { 4 } else { 8 };
                self.host_addr(x, n, true, left);
                self.s
                    .local_get(CPU)
                    .i64_load(mem(abi::F + 8 * d.rs2 as u64, 3));
                if d.op == Fsw {
                    self.s.i64_store32(m0);
                } else {
                    self.s.i64_store(m0);
                }
            }
            Beq => branch!(i64_eq),
            Bne => branch!(i64_ne),
            Blt => branch!(i64_lt_s),
            Bge => branch!(i64_ge_s),
            Bltu => branch!(i64_lt_u),
            Bgeu => branch!(i64_ge_u),
            Jal => {
                if d.rd != 0 {
                    self.s.i64_const(x.next as i64).local_get(BIAS).i64_add();
                    self.set(d.rd);
                }
                self.flush();
                self.goto(x.pc.wrapping_add(d.imm as u64), index, block_of);
            }
            Jalr => {
                self.get(d.rs1);
                self.s
                    .i64_const(d.imm)
                    .i64_add()
                    .i64_const(!1)
                    .i64_and()
                    .local_set(PC_OUT);
                if d.rd != 0 {
                    self.s.i64_const(x.next as i64).local_get(BIAS).i64_add();
                    self.set(d.rd);
                }
                self.exit_to_pc_out(abi::JUMP, 0);
            }
            op => unreachable!("{op:?} is not translated"),
        }
    }

    /// The high multiplies, from 32-bit halves (Wasm has no 64x64->128 multiply in every
    /// engine): mulhu, then the signed corrections.
    fn mulh(&mut self, d: Insn) {
        // T0 = a, T1 = b.
        self.get(d.rs1);
        self.s.local_set(T0);
        self.get(d.rs2);
        self.s.local_set(T1);
        let s = &mut self.s;
        fn lo(s: &mut InstructionSink<'_>, l: u32) {
            s.local_get(l).i64_const(0xffff_ffff).i64_and();
        }
        fn hi(s: &mut InstructionSink<'_>, l: u32) {
            s.local_get(l).i64_const(32).i64_shr_u();
        }
        // T2 = lh = a_lo * b_hi; T3 = hl = a_hi * b_lo
        lo(s, T0);
        hi(s, T1);
        s.i64_mul().local_set(T2);
        hi(s, T0);
        lo(s, T1);
        s.i64_mul().local_set(T3);
        // mid = (a_lo*b_lo >> 32) + (lh & m) + (hl & m), on the stack
        lo(s, T0);
        lo(s, T1);
        s.i64_mul().i64_const(32).i64_shr_u();
        lo(s, T2);
        s.i64_add();
        lo(s, T3);
        s.i64_add().i64_const(32).i64_shr_u();
        // + hh + (lh >> 32) + (hl >> 32)
        hi(s, T0);
        hi(s, T1);
        s.i64_mul().i64_add();
        hi(s, T2);
        s.i64_add();
        hi(s, T3);
        s.i64_add();
        if matches!(d.op, Op::Mulh | Op::Mulhsu) {
            // - (a < 0 ? b : 0)
            s.local_get(T1)
                .local_get(T0)
                .i64_const(63)
                .i64_shr_s()
                .i64_and()
                .i64_sub();
        }
        if d.op == Op::Mulh {
            // - (b < 0 ? a : 0)
            s.local_get(T0)
                .local_get(T1)
                .i64_const(63)
                .i64_shr_s()
                .i64_and()
                .i64_sub();
        }
        self.set(d.rd);
    }

    /// Division and remainder without Wasm's traps: the divisor becomes 1 where RISC-V
    /// defines the result (x / 0, MIN / -1), and a select picks that result.
    fn div(&mut self, d: Insn) {
        use Op::*;
        let word = matches!(d.op, Divw | Divuw | Remw | Remuw);
        let signed = matches!(d.op, Div | Rem | Divw | Remw);
        let rem = matches!(d.op, Rem | Remu | Remw | Remuw);
        // T0 = a, T1 = b, extended as the op reads them.
        for (r, t) in [(d.rs1, T0), (d.rs2, T1)] {
            self.get(r);
            if word {
                if signed {
                    self.s.i64_extend32_s();
                } else {
                    self.s.i64_const(0xffff_ffff).i64_and();
                }
            }
            self.s.local_set(t);
        }
        let s = &mut self.s;
        // The quotient or remainder with a safe divisor: select(1, b, b == 0 || overflow).
        s.local_get(T0);
        s.i64_const(1).local_get(T1).local_get(T1).i64_eqz();
        if signed && !word && !rem {
            s.local_get(T0)
                .i64_const(i64::MIN)
                .i64_eq()
                .local_get(T1)
                .i64_const(-1)
                .i64_eq()
                .i32_and()
                .i32_or();
        }
        s.select();
        match (signed, rem) {
            (true, false) => s.i64_div_s(),
            (false, false) => s.i64_div_u(),
            (true, true) => s.i64_rem_s(),
            (false, true) => s.i64_rem_u(),
        };
        s.local_set(T2);
        // x / 0 = all ones, x % 0 = x.
        if rem {
            s.local_get(T0);
        } else {
            s.i64_const(-1);
        }
        s.local_get(T2).local_get(T1).i64_eqz().select();
        if word {
            s.i64_extend32_s();
        }
        self.set(d.rd);
    }
}
