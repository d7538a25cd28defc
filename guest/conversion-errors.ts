/**
 * Why a guest conversion failed, as types an operator (and the workflow's retry policy) can act on. The texts
 * virt-v2v prints are matched here; each error says what to do next. `retryable` is false where running the same
 * conversion again cannot help.
 */

export class GuestConversionError extends Error {
  override name = 'GuestConversionError';
  /** virt-v2v's own error text, when it printed one. */
  readonly toolMessage?: string;
  /** The tool's last lines of output, for the failure's details. */
  readonly outputTail: string;
  readonly retryable: boolean = true;
  constructor(message: string, opts: { toolMessage?: string; outputTail?: string } = {}) {
    super(message);
    this.toolMessage = opts.toolMessage;
    this.outputTail = opts.outputTail ?? '';
  }
}

/** The disks hold no operating system virt-v2v recognises (blank, data-only, or an OS it cannot inspect). */
export class GuestInspectionFailedError extends GuestConversionError {
  override name = 'GuestInspectionFailedError';
  override readonly retryable = false;
}

/** An OS was found but no root file system could be chosen (multi-boot, or the root is on a disk not migrated). */
export class NoRootFilesystemError extends GuestConversionError {
  override name = 'NoRootFilesystemError';
  override readonly retryable = false;
}

/** virt-v2v knows the guest but cannot convert it (OS or version it does not support, no usable kernel, …). */
export class UnsupportedGuestError extends GuestConversionError {
  override name = 'UnsupportedGuestError';
  override readonly retryable = false;
}

/** Encrypted volumes (LUKS, BitLocker) without a key: the guest cannot be opened to convert it. */
export class EncryptedGuestError extends GuestConversionError {
  override name = 'EncryptedGuestError';
  override readonly retryable = false;
}

/** The guest's file systems lack the free space conversion needs (a new initramfs, drivers). */
export class InsufficientGuestSpaceError extends GuestConversionError {
  override name = 'InsufficientGuestSpaceError';
  override readonly retryable = false;
}

/** The converter was stopped (cancelled, or killed) before it finished; the converted copy is incomplete. */
export class ConversionInterruptedError extends GuestConversionError {
  override name = 'ConversionInterruptedError';
}

const SKIP_HINT = "set guest.convert to 'skip' to migrate the disks without conversion";

interface Rule {
  test: RegExp;
  make: (toolMessage: string, outputTail: string) => GuestConversionError;
}

/**
 * virt-v2v 2.2's error texts, matched most specific first. The ones marked "seen" were printed by Debian 12's
 * virt-v2v-in-place 2.2.0 here (fixtures in test/guest/conversion-errors.test.ts); the others are virt-v2v's own
 * strings (convert/choose_root.ml, convert/convert.ml, convert/convert_linux.ml, convert/mount_filesystems.ml).
 */
const RULES: Rule[] = [
  {
    // seen: a LUKS partition without --key: "getline: …" then "virt-v2v-in-place: could not read key from user".
    test: /could not read key from user|LUKS|BitLocker|passphrase/i,
    make: (m, t) =>
      new EncryptedGuestError(`the guest's disks are encrypted and no key was given (virt-v2v: ${m}); ${SKIP_HINT} (its bytes are copied as-is)`, {
        toolMessage: m,
        outputTail: t,
      }),
  },
  {
    // seen, for a blank disk and for a partitioned disk with an empty file system: "inspection could not detect the
    // source guest (or physical machine). … No root device found in this operating system image."
    test: /No root device found in this operating system image|multi-boot operating systems are not supported|root device \S+ not found|not an installed operating system/i,
    make: (m, t) =>
      new NoRootFilesystemError(
        `virt-v2v found no root file system of an operating system on the migrated disks (virt-v2v: ${firstLine(m)}); if the VM has one, check that every disk was migrated and that it is not encrypted, or ${SKIP_HINT}`,
        { toolMessage: m, outputTail: t },
      ),
  },
  {
    test: /not enough free space for conversion|not enough available inodes for conversion/i,
    make: (m, t) =>
      new InsufficientGuestSpaceError(`the guest has too little free space to be converted (virt-v2v: ${m}); free space in the source guest (or grow its disk) and migrate again`, {
        toolMessage: m,
        outputTail: t,
      }),
  },
  {
    test: /unable to convert this guest type|only xen kernels are installed|no installed kernel packages|unable to rebuild initrd|no bootloader detected/i,
    make: (m, t) =>
      new UnsupportedGuestError(`virt-v2v cannot convert this guest (virt-v2v: ${firstLine(m)}); ${SKIP_HINT} and install VirtIO drivers in the guest yourself`, {
        toolMessage: m,
        outputTail: t,
      }),
  },
  {
    // The guest's file systems cannot be opened for writing: not shut down cleanly, hibernated, or damaged.
    test: /unable to mount the disk image for writing|mounted read-only, even though we asked|could not write to the guest filesystem|Filesystem still has errors|detected errors on the xfs filesystem|inspection .*failed|libguestfs error: inspect/i,
    make: (m, t) =>
      new GuestInspectionFailedError(
        `virt-v2v could not inspect or open the guest's file systems (virt-v2v: ${firstLine(m)}); shut the source guest down cleanly (no hibernation or Windows Fast Startup), check its file systems, and migrate again, or ${SKIP_HINT}`,
        { toolMessage: m, outputTail: t },
      ),
  },
];

function firstLine(m: string): string {
  return m.split('\n').find((l) => l.trim())?.trim() ?? m;
}

/** The typed error for a failed run, from virt-v2v's error message(s) and how the process ended. */
export function classifyConversionFailure(end: {
  errorMessages: string[];
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  outputTail: string;
  aborted?: boolean;
}): GuestConversionError {
  if (end.aborted || (end.signal && end.errorMessages.length === 0)) {
    return new ConversionInterruptedError(
      `virt-v2v-in-place was stopped (${end.aborted ? 'cancelled' : `killed by ${end.signal}`}) before it finished; the partly converted copy is discarded and conversion starts again from the copied volumes`,
      { outputTail: end.outputTail },
    );
  }
  const toolMessage = end.errorMessages.join('; ');
  for (const rule of RULES) if (rule.test.test(toolMessage)) return rule.make(toolMessage, end.outputTail);
  const how = end.signal ? `killed by ${end.signal}` : `exit code ${end.exitCode}`;
  return new GuestConversionError(
    `virt-v2v-in-place failed (${how})${toolMessage ? `: ${toolMessage}` : ''}; it is retried on a fresh copy of the volumes`,
    { toolMessage: toolMessage || undefined, outputTail: end.outputTail },
  );
}
