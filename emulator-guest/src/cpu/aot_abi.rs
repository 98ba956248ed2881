//! The contract between the converter's translator (converter/src/aot/) and the guest
//! (`cpu::aot`): where translated code finds the hart's state and the TLBs, what it
//! returns, and the layout of the translation index. Both sides read these numbers from
//! here; the guest checks the struct offsets at compile time.
//!
//! A translated function has the Wasm type
//! `(cpu: i32, tlbs: i32, entry: i32, bias: i64, budget: i64) -> i32`, the type of
//! `extern "C" fn(*mut Cpu, *const Tlbs, u32, u64, u64) -> u32` in wasm32's C ABI. It
//! starts at its block number `entry`, runs with guest addresses = ELF addresses + `bias`,
//! keeps registers in Wasm locals within a basic block (their home is `Cpu`: each block
//! loads what it reads, and stores what it wrote before control leaves it), and before it
//! returns stores the next pc (`PC`) and the instructions it retired (added to
//! `INSTRET`). It
//! returns after a jump out of its code, after at least `budget` instructions at a
//! backward branch, or before an instruction it does not translate or a memory access
//! the TLB cannot serve: then the interpreter runs from `PC`.
//!
//! A jump out of its code does not return if the hart's jump cache (at `JUMPS`) knows
//! translated code for the target and budget is left: the function tail-calls that code
//! (`return_call_indirect`) with the budget that is left, so calls and returns between
//! translated functions stay in translated code. The guest fills the cache with entries
//! it checked (`cpu::aot`) and empties it whenever it forgets decoded blocks.

/// Byte offset of `x[i]` in `Cpu` is `X + 8 * i`.
pub const X: u64 = 0;
/// Byte offset of `f[i]` in `Cpu` is `F + 8 * i`.
pub const F: u64 = 256;
pub const PC: u64 = 512;
pub const INSTRET: u64 = 528;
/// Byte offset of the jump cache's address (a u32 on wasm32) in `Cpu`.
pub const JUMPS: u64 = 536;

/// The jump cache: `JUMP_SETS` sets of two entries of `JUMP_ENTRY` bytes each, by guest
/// pc: the pc (u64, `JUMP_EMPTY` when empty) at 0, the function's table slot (u32) at
/// `JUMP_FUNC`, the block (u32) at `JUMP_BLOCK` and the bias (u64) at `JUMP_BIAS`. The set
/// of `pc` is the top bits of `pc * JUMP_HASH` (Fibonacci hashing: with the low bits folded
/// with the next ones instead, 10 of a busybox shell loop's 23 hot targets shared a slot);
/// two ways, because in a direct-mapped cache of 4096 a few of the hundreds of targets
/// of such a loop still took turns in one slot.
pub const JUMP_SETS: u64 = 2048;
pub const JUMP_WAYS: u64 = 2;
pub const JUMP_ENTRY: u64 = 32;
pub const JUMP_FUNC: u64 = 8;
pub const JUMP_BLOCK: u64 = 12;
pub const JUMP_BIAS: u64 = 16;
pub const JUMP_HASH: u64 = 0x9e37_79b9_7f4a_7c15;
/// No jump target is odd.
pub const JUMP_EMPTY: u64 = 1;

/// TLB entries per access kind, each `TLB_ENTRY` bytes: the page (u64) at 0 and the
/// host-address bias (a pointer) at `TLB_BIAS`. The read TLB comes first, the write TLB
/// at `TLB_WRITE`. The slot of page `vpn` is `(vpn ^ (vpn >> 11)) & (TLB_SLOTS - 1)`.
pub const TLB_SLOTS: u64 = 2048;
pub const TLB_ENTRY: u64 = 16;
pub const TLB_BIAS: u64 = 8;
pub const TLB_WRITE: u64 = TLB_SLOTS * TLB_ENTRY;
pub const PAGE_SHIFT: u64 = 12;

/// Returned: go on at `PC` (a translated entry there, if any, may run).
pub const JUMP: u32 = 0;
/// Returned: the interpreter must run the instruction at `PC` (and its block).
pub const INTERP: u32 = 1;

/// Most bytes of code in one translated function (block offsets are u16).
pub const MAX_GROUP_BYTES: u64 = 0xffff;

/// The index the converter writes after the bundle (little-endian):
/// `INDEX_MAGIC`, then u32 group count, u32 offset count, then per group
/// (`GROUP_LEN` bytes): u64 bundle offset of its first byte, u64 ELF address of it,
/// u32 length in bytes, u32 function number (its table slot minus the table base),
/// u32 first block, u32 block count; then the blocks' offsets from their group's start
/// (u16 each), ascending within a group. Groups are sorted by bundle offset and do not
/// overlap.
pub const INDEX_MAGIC: [u8; 8] = *b"RVAOTIX1";
pub const INDEX_HEAD: usize = 16;
pub const GROUP_LEN: usize = 32;
