/** ELF constants used by the engine, named as in the ELF specification and <elf.h>. */

export const ET = { NONE: 0, REL: 1, EXEC: 2, DYN: 3, CORE: 4 } as const;

export const PT = {
  NULL: 0,
  LOAD: 1,
  DYNAMIC: 2,
  INTERP: 3,
  NOTE: 4,
  SHLIB: 5,
  PHDR: 6,
  TLS: 7,
  GNU_EH_FRAME: 0x6474e550,
  GNU_STACK: 0x6474e551,
  GNU_RELRO: 0x6474e552,
  GNU_PROPERTY: 0x6474e553,
} as const;

export const PF = { X: 1, W: 2, R: 4 } as const;

export const SHT = {
  NULL: 0,
  PROGBITS: 1,
  SYMTAB: 2,
  STRTAB: 3,
  DYNAMIC: 6,
  NOTE: 7,
  NOBITS: 8,
  DYNSYM: 11,
  GNU_VERNEED: 0x6ffffffe,
} as const;

export const SHF = { WRITE: 1, ALLOC: 2, EXECINSTR: 4 } as const;

export const DT = {
  NULL: 0,
  NEEDED: 1,
  PLTRELSZ: 2,
  PLTGOT: 3,
  HASH: 4,
  STRTAB: 5,
  SYMTAB: 6,
  RELA: 7,
  RELASZ: 8,
  RELAENT: 9,
  STRSZ: 10,
  SYMENT: 11,
  INIT: 12,
  FINI: 13,
  SONAME: 14,
  RPATH: 15,
  SYMBOLIC: 16,
  REL: 17,
  RELSZ: 18,
  RELENT: 19,
  PLTREL: 20,
  DEBUG: 21,
  TEXTREL: 22,
  JMPREL: 23,
  BIND_NOW: 24,
  INIT_ARRAY: 25,
  FINI_ARRAY: 26,
  RUNPATH: 29,
  FLAGS: 30,
  PREINIT_ARRAY: 32,
  RELR: 36,
  GNU_HASH: 0x6ffffef5,
  VERSYM: 0x6ffffff0,
  RELACOUNT: 0x6ffffff9,
  RELCOUNT: 0x6ffffffa,
  FLAGS_1: 0x6ffffffb,
  VERDEF: 0x6ffffffc,
  VERNEED: 0x6ffffffe,
  VERNEEDNUM: 0x6fffffff,
  MIPS_RLD_MAP_REL: 0x70000035,
} as const;

/** Dynamic tags whose value is an address (d_ptr) that must be mapped by a PT_LOAD. */
export const ADDRESS_TAGS: readonly number[] = [
  DT.PLTGOT, DT.HASH, DT.STRTAB, DT.SYMTAB, DT.RELA, DT.INIT, DT.FINI, DT.REL, DT.JMPREL, DT.INIT_ARRAY,
  DT.FINI_ARRAY, DT.PREINIT_ARRAY, DT.RELR, DT.GNU_HASH, DT.VERSYM, DT.VERDEF, DT.VERNEED,
];

export const DF_STATIC_TLS = 0x10;
export const DF_1_PIE = 0x08000000;

export const EM = {
  I386: 3,
  MIPS: 8,
  PPC: 20,
  PPC64: 21,
  S390: 22,
  ARM: 40,
  X86_64: 62,
  AARCH64: 183,
  RISCV: 243,
  LOONGARCH: 258,
} as const;

/** The architecture name used across mambapatch for a machine number and byte order. */
export function machineName(em: number, le: boolean, bits: 32 | 64): string {
  switch (em) {
    case EM.X86_64:
      return bits === 64 ? 'x86_64' : 'x32';
    case EM.AARCH64:
      return le ? 'aarch64' : 'aarch64_be';
    case EM.PPC64:
      return le ? 'ppc64le' : 'ppc64';
    case EM.PPC:
      return 'ppc';
    case EM.I386:
      return 'i386';
    case EM.ARM:
      return 'arm';
    case EM.S390:
      return bits === 64 ? 's390x' : 's390';
    case EM.MIPS:
      return bits === 64 ? 'mips64' : 'mips';
    case EM.RISCV:
      return bits === 64 ? 'riscv64' : 'riscv32';
    case EM.LOONGARCH:
      return 'loongarch64';
    default:
      return `EM_${em}`;
  }
}

/** The architectures the engine edits. */
export const EDITABLE_ARCHES: readonly string[] = ['x86_64', 'aarch64', 'ppc64le'];

/** The largest page size a kernel for this architecture may use (what a new PT_LOAD must be aligned to). */
export function maxPageSize(arch: string): number {
  switch (arch) {
    case 'aarch64':
    case 'ppc64le':
    case 'ppc64':
    case 'arm':
      return 0x10000;
    default:
      return 0x1000;
  }
}
