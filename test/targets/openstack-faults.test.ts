import { QuotaExceededError, TargetAuthError, TargetNotFoundError, TargetRequestError } from '../../targets/target-errors';
import { faultError, parseFault, quotaName } from '../../targets/openstack/openstack-errors';
import { OpenStackHttpError } from '../../targets/openstack/openstack-errors';
import { imageProperties, migrationTag } from '../../targets/openstack/openstack-target-provider';
import { normalizeConnectionInfo } from '../../targets/openstack/cinder-attachments';

/**
 * The fault bodies Zed's services answer with (the live ones are also met by test/openstack/openstack-failures.test.ts
 * against the lab); each must become the typed error that says what to do.
 */
describe('OpenStack faults', () => {
  test.each([
    [413, '{"overLimit": {"code": 413, "message": "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested 1G, quota is 1G and 1G has been consumed.", "retryAfter": "0"}}', QuotaExceededError, 'gigabytes'],
    [413, '{"overLimit": {"code": 413, "message": "VolumeLimitExceeded: Maximum number of volumes allowed (2) exceeded for quota \'volumes\'.", "retryAfter": "0"}}', QuotaExceededError, 'volumes'],
    [403, '{"forbidden": {"code": 403, "message": "Quota exceeded for instances: Requested 1, but already used 0 of 0 instances"}}', QuotaExceededError, 'instances'],
    [409, '{"NeutronError": {"type": "OverQuota", "message": "Quota exceeded for resources: [\'port\'].", "detail": ""}}', QuotaExceededError, 'port'],
  ])('HTTP %i quota answer → QuotaExceededError naming the quota', (status, body, type, quota) => {
    const err = faultError(parseFault(status, body), 'creating volume d0 in project p1');
    expect(err).toBeInstanceOf(type);
    expect((err as QuotaExceededError).quota).toBe(quota);
    expect(err.message).toMatch(new RegExp(`^creating volume d0 in project p1: .*\\(quota: ${quota}\\); raise the project's quota or free some$`));
  });

  test('credentials, policy, bad requests and missing things are typed; conflicts and 5xx stay retryable', () => {
    expect(faultError(parseFault(401, '{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}'), 'x')).toBeInstanceOf(TargetAuthError);
    expect(faultError(parseFault(403, '{"forbidden": {"code": 403, "message": "Policy doesn\'t allow os_compute_api:servers:create:forced_host to be performed."}}'), 'x')).toBeInstanceOf(TargetAuthError);
    const bad = faultError(parseFault(400, '{"badRequest": {"code": 400, "message": "Invalid input received: Availability zone \'az9\' is invalid."}}'), 'creating volume d0');
    expect(bad).toBeInstanceOf(TargetRequestError);
    expect(bad.message).toBe("creating volume d0: Invalid input received: Availability zone 'az9' is invalid.");
    expect(faultError(parseFault(404, '{"itemNotFound": {"code": 404, "message": "Volume type with name nfs9 could not be found."}}'), 'x')).toBeInstanceOf(TargetNotFoundError);
    const conflict = faultError(parseFault(409, '{"NeutronError": {"type": "MacAddressInUse", "message": "Unable to complete operation for network n. The mac address fa:16:3e:00:00:01 is in use.", "detail": ""}}'), 'creating port');
    expect(conflict).toBeInstanceOf(OpenStackHttpError);
    expect(faultError(parseFault(503, '<html>Service Unavailable</html>'), 'x').message).toBe('x: <html>Service Unavailable</html> (HTTP 503)');
    expect(quotaName('something else')).toBeUndefined();
  });
});

describe('what the OpenStack provider sends', () => {
  test('image properties Nova boots a converted volume by', () => {
    expect(imageProperties({ firmware: 'efi', machineType: 'pc-q35', diskBus: 'scsi', nicModel: 'virtio', osType: 'linux', osDistro: 'rhel' })).toEqual({
      hw_disk_bus: 'scsi',
      hw_scsi_model: 'virtio-scsi',
      hw_machine_type: 'q35',
      hw_firmware_type: 'uefi',
      hw_vif_model: 'virtio',
      os_type: 'linux',
      os_distro: 'rhel',
    });
    // Secure Boot as 'required': Nova then schedules only onto a host that can, instead of booting it without.
    expect(imageProperties({ firmware: 'efi', secureBoot: true, machineType: 'pc-q35', diskBus: 'virtio', nicModel: 'virtio' })).toEqual({
      hw_disk_bus: 'virtio',
      hw_machine_type: 'q35',
      hw_firmware_type: 'uefi',
      os_secure_boot: 'required',
      hw_vif_model: 'virtio',
    });
    expect(imageProperties({ firmware: 'bios', machineType: 'pc-i440fx', diskBus: 'sata', nicModel: 'e1000' })).toEqual({
      hw_disk_bus: 'sata',
      hw_machine_type: 'pc',
      hw_firmware_type: 'bios',
      hw_vif_model: 'e1000',
    });
  });

  test('migration tags are valid Nova and Neutron tags whatever the id', () => {
    expect(migrationTag('mig-0123abcd')).toBe('vmigrate:mig-0123abcd');
    const odd = migrationTag('a/b,c'.repeat(20));
    expect(odd).toMatch(/^vmigrate:[0-9a-f]{40}$/);
    expect(odd.length).toBeLessThanOrEqual(60);
  });

  test('connection_info, flat or nested', () => {
    const nfs = { export: '127.0.0.1:/srv/share', name: 'volume-1', options: null, format: 'raw' };
    expect(normalizeConnectionInfo({ driver_volume_type: 'nfs', ...nfs })).toEqual({ driver_volume_type: 'nfs', data: nfs });
    expect(normalizeConnectionInfo({ driver_volume_type: 'nfs', data: nfs })).toEqual({ driver_volume_type: 'nfs', data: nfs });
    expect(() => normalizeConnectionInfo({ data: nfs })).toThrow(/without a driver_volume_type/);
  });
});
