import {
  classifyConversionFailure,
  ConversionInterruptedError,
  EncryptedGuestError,
  GuestConversionError,
  GuestInspectionFailedError,
  InsufficientGuestSpaceError,
  NoRootFilesystemError,
  UnsupportedGuestError,
} from '../../guest/conversion-errors';

// What virt-v2v-in-place 2.2.0 printed here for a blank disk and for a partitioned disk with an empty ext4
// (JSON "error" message; the same text on stderr after "virt-v2v-in-place: error: ").
const NO_OS =
  'inspection could not detect the source guest (or physical machine).\n\nAssuming that you are running virt-v2v/virt-p2v on a source which is supported (and not, for example, a blank disk), then this should not happen.\n\nNo root device found in this operating system image.';
// A LUKS partition, no key: no JSON error, only stderr "getline: Inappropriate ioctl for device" and this line.
const LUKS = 'could not read key from user';

const end = (errorMessages: string[], extra: Partial<Parameters<typeof classifyConversionFailure>[0]> = {}) =>
  classifyConversionFailure({ errorMessages, exitCode: 1, signal: null, outputTail: 'tail', ...extra });

describe('conversion failures become typed errors that say what to do', () => {
  it('no OS on the disks: NoRootFilesystemError, not retryable, names the way out', () => {
    const err = end([NO_OS]);
    expect(err).toBeInstanceOf(NoRootFilesystemError);
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/no root file system of an operating system/);
    expect(err.message).toMatch(/inspection could not detect the source guest/);
    expect(err.message).toMatch(/guest\.convert to 'skip'/);
    expect(err.toolMessage).toBe(NO_OS);
    expect(err.outputTail).toBe('tail');
  });

  it('an encrypted guest without a key: EncryptedGuestError', () => {
    const err = end([LUKS]);
    expect(err).toBeInstanceOf(EncryptedGuestError);
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/encrypted and no key was given.*copied as-is/);
  });

  it.each([
    ['virt-v2v is unable to convert this guest type (linux/alpine)', UnsupportedGuestError, /cannot convert this guest/],
    ['only Xen kernels are installed in this guest.', UnsupportedGuestError, /install VirtIO drivers in the guest yourself/],
    ['not enough free space for conversion on filesystem ‘/boot’.  1234 bytes free < 50000000 bytes needed', InsufficientGuestSpaceError, /free space in the source guest/],
    ['multi-boot operating systems are not supported by virt-v2v. Use the --root option to change how virt-v2v handles this.', NoRootFilesystemError, /every disk was migrated/],
    ['unable to mount the disk image for writing. This has probably happened because Windows Hibernation or Fast Restart is being used in this guest.', GuestInspectionFailedError, /shut the source guest down cleanly/],
  ])('%s', (text, type, hint) => {
    const err = end([text]);
    expect(err).toBeInstanceOf(type);
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(hint);
  });

  it('anything else is a retryable GuestConversionError carrying the tool text', () => {
    const err = end(['libguestfs error: guestfs_launch failed.'], { exitCode: 1 });
    expect(err.constructor).toBe(GuestConversionError);
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/exit code 1.*guestfs_launch failed.*retried on a fresh copy/);
  });

  it('a converter killed partway or cancelled is ConversionInterruptedError, retryable', () => {
    const killed = end([], { signal: 'SIGKILL', exitCode: null });
    expect(killed).toBeInstanceOf(ConversionInterruptedError);
    expect(killed.retryable).toBe(true);
    expect(killed.message).toMatch(/killed by SIGKILL.*discarded and conversion starts again from the copied volumes/);
    expect(end([], { aborted: true, signal: 'SIGTERM' }).message).toMatch(/cancelled/);
  });
});
