import { parseConverterLine } from '../../guest/virt-v2v-output';

// Lines virt-v2v-in-place 2.2.0 (Debian 12) wrote to --machine-readable=fd:3 while converting the test guest.
const RECORDED = [
  '{ "message": "Setting up the source: -i libvirtxml src.xml", "timestamp": "2026-11-22T04:24:21.018033133+00:00", "type": "message" }',
  '{ "message": "Inspecting the source", "timestamp": "2026-11-22T04:26:32.731590472+00:00", "type": "message" }',
  '{ "message": "Converting 12.15 to run on KVM", "timestamp": "2026-11-22T04:27:55.979672761+00:00", "type": "message" }',
  '{ "message": "could not determine a way to update the configuration of Grub2", "timestamp": "2026-11-22T04:28:55.902003313+00:00", "type": "warning" }',
  '{ "message": "The QEMU Guest Agent will be installed for this guest at first boot.", "timestamp": "2026-11-22T04:30:05.063187447+00:00", "type": "info" }',
  '{ "message": "This guest has virtio drivers installed.", "timestamp": "2026-11-22T04:35:11.007954194+00:00", "type": "info" }',
  '{ "message": "Finishing off", "timestamp": "2026-11-22T04:35:32.091689390+00:00", "type": "message" }',
];

describe('virt-v2v machine-readable output', () => {
  it('turns each recorded line into a stage, warning or info, in order', () => {
    const events = RECORDED.map(parseConverterLine);
    expect(events.map((e) => e && e.kind)).toEqual(['message', 'message', 'message', 'warning', 'info', 'info', 'message']);
    expect(events[2]).toEqual({ kind: 'message', text: 'Converting 12.15 to run on KVM', timestamp: '2026-11-22T04:27:55.979672761+00:00' });
    expect(events[5]).toMatchObject({ kind: 'info', text: 'This guest has virtio drivers installed.' });
  });

  it('keeps multi-line error messages whole (JSON escapes)', () => {
    const e = parseConverterLine(
      '{ "message": "inspection could not detect the source guest (or physical machine).\\n\\nNo root device found in this operating system image.", "timestamp": "2026-11-22T04:50:07.221381086+00:00", "type": "error" }',
    );
    expect(e).toMatchObject({ kind: 'error' });
    expect(e && 'text' in e && e.text.split('\n')).toEqual(['inspection could not detect the source guest (or physical machine).', '', 'No root device found in this operating system image.']);
  });

  it('reads progress bars and ignores human-readable and broken lines', () => {
    expect(parseConverterLine('37/100')).toEqual({ kind: 'progress', done: 37, total: 100 });
    expect(parseConverterLine('[ 133.2] Converting 12.15 to run on KVM')).toBeUndefined();
    expect(parseConverterLine('{ "message": "cut off')).toBeUndefined();
    expect(parseConverterLine('{ "type": "message" }')).toBeUndefined();
    expect(parseConverterLine('')).toBeUndefined();
  });
});
