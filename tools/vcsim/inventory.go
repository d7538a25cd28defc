package main

import (
	"fmt"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// decorateVMs sets what a real vSphere reports about a VM that vcsim does not model, so inventory and preflight
// see real shapes: VMware Tools state and the guest's IP addresses, devices vcsim has no code for (PCI passthrough,
// SR-IOV NICs, a virtual TPM, a USB device), fault tolerance, templates and raw device mappings. It runs once,
// after the VMs exist and before the ready line, so no client is reading them yet; it changes the stored objects
// directly because vcsim offers no SOAP method that sets these.
func decorateVMs(model *simulator.Model, spec *simSpec, vms []vmReady) error {
	for i, ready := range vms {
		vs := spec.VMs[i]
		obj := model.Map().Get(types.ManagedObjectReference{Type: "VirtualMachine", Value: ready.Moref})
		vm, ok := obj.(*simulator.VirtualMachine)
		if !ok {
			return fmt.Errorf("vm %s (%s) not in the model", vs.Name, ready.Moref)
		}
		decorateTools(vm, vs)
		for j, nic := range vs.NICs {
			if len(nic.IPAddresses) == 0 || j >= len(ready.NICs) {
				continue
			}
			for k := range vm.Guest.Net {
				if vm.Guest.Net[k].MacAddress == ready.NICs[j].MacAddress {
					vm.Guest.Net[k].IpAddress = nic.IPAddresses
				}
			}
			if vm.Guest.IpAddress == "" {
				vm.Guest.IpAddress = nic.IPAddresses[0]
				vm.Summary.Guest.IpAddress = nic.IPAddresses[0]
			}
		}
		for _, dev := range vs.Devices {
			vm.Config.Hardware.Device = append(vm.Config.Hardware.Device, extraDevice(dev, len(vm.Config.Hardware.Device))...)
		}
		if vs.FaultTolerance {
			vm.Runtime.FaultToleranceState = types.VirtualMachineFaultToleranceStateRunning
			vm.Summary.Runtime.FaultToleranceState = types.VirtualMachineFaultToleranceStateRunning
			vm.Config.FtInfo = &types.FaultToleranceConfigInfo{Role: 1, InstanceUuids: []string{vm.Config.InstanceUuid}}
		}
		if vs.Template {
			vm.Config.Template = true
			vm.Summary.Config.Template = true
		}
		for j, d := range vs.Disks {
			if d.Rdm != "" && j < len(ready.Disks) {
				if err := makeRawDeviceMapping(vm, ready.Disks[j].Key, d); err != nil {
					return fmt.Errorf("vm %s: %w", vs.Name, err)
				}
			}
		}
	}
	return nil
}

// decorateTools: a powered-on VM runs current Tools unless the spec says otherwise; a powered-off one reports
// them not running.
func decorateTools(vm *simulator.VirtualMachine, vs vmSpec) {
	tools := vs.Tools
	if tools == "" {
		tools = "running"
		if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
			tools = "notRunning"
		}
	}
	running, version, status, ver := "guestToolsNotRunning", "guestToolsCurrent", types.VirtualMachineToolsStatusToolsNotRunning, "12352"
	switch tools {
	case "running":
		running, status = "guestToolsRunning", types.VirtualMachineToolsStatusToolsOk
	case "old":
		running, version, status, ver = "guestToolsRunning", "guestToolsSupportedOld", types.VirtualMachineToolsStatusToolsOld, "10346"
	case "notInstalled":
		version, status, ver = "guestToolsNotInstalled", types.VirtualMachineToolsStatusToolsNotInstalled, "0"
	}
	vm.Guest.ToolsRunningStatus = running
	vm.Guest.ToolsVersionStatus2 = version
	vm.Guest.ToolsVersionStatus = version
	vm.Guest.ToolsStatus = status
	vm.Guest.ToolsVersion = ver
	vm.Summary.Guest.ToolsRunningStatus = running
	vm.Summary.Guest.ToolsVersionStatus2 = version
	vm.Summary.Guest.ToolsStatus = status
}

// extraDevice returns the devices vSphere shows for a spec device; keys in ranges vSphere uses for them.
func extraDevice(kind string, n int) []types.BaseVirtualDevice {
	key := int32(13000 + n)
	label := func(s string) *types.Description { return &types.Description{Label: s, Summary: s} }
	switch kind {
	case "pciPassthrough":
		return []types.BaseVirtualDevice{&types.VirtualPCIPassthrough{VirtualDevice: types.VirtualDevice{
			Key: key, DeviceInfo: label("PCI device 0"),
			Backing: &types.VirtualPCIPassthroughDeviceBackingInfo{Id: "0000:3b:00.0", DeviceId: "1eb8", SystemId: "5f5e-sim", VendorId: 0x10de},
		}}}
	case "sriovNic":
		return []types.BaseVirtualDevice{&types.VirtualSriovEthernetCard{VirtualEthernetCard: types.VirtualEthernetCard{
			VirtualDevice: types.VirtualDevice{Key: key, DeviceInfo: label("SR-IOV network adapter 1"),
				Backing: &types.VirtualEthernetCardNetworkBackingInfo{VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "VM Network"}}},
			AddressType: string(types.VirtualEthernetCardMacTypeGenerated), MacAddress: fmt.Sprintf("00:50:56:9f:%02x:%02x", n/256, n%256),
		}}}
	case "tpm":
		return []types.BaseVirtualDevice{&types.VirtualTPM{VirtualDevice: types.VirtualDevice{Key: 11000, DeviceInfo: label("Virtual TPM")}}}
	case "usb":
		ctrl := &types.VirtualUSBController{VirtualController: types.VirtualController{VirtualDevice: types.VirtualDevice{Key: 7000 + int32(n), DeviceInfo: label("USB controller")}}}
		dev := &types.VirtualUSB{VirtualDevice: types.VirtualDevice{Key: key, ControllerKey: 7000 + int32(n), DeviceInfo: label("USB device"),
			Backing: &types.VirtualUSBUSBBackingInfo{VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "path:1/0/1 version:2"}}},
			Connected: true, Vendor: 0x0781, Product: 0x5581}
		return []types.BaseVirtualDevice{ctrl, dev}
	}
	return nil
}

// makeRawDeviceMapping gives the disk an RDM backing, as a LUN mapped into the VM shows in vSphere: the mapping
// file on the datastore, the LUN's device name and its compatibility mode.
func makeRawDeviceMapping(vm *simulator.VirtualMachine, key int32, d diskSpec) error {
	for _, dev := range vm.Config.Hardware.Device {
		disk, ok := dev.(*types.VirtualDisk)
		if !ok || disk.Key != key {
			continue
		}
		flat, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if !ok {
			return fmt.Errorf("disk %d has no flat backing to replace", key)
		}
		mode := flat.DiskMode
		if d.Rdm == "physicalMode" {
			mode = string(types.VirtualDiskModeIndependent_persistent)
		}
		disk.Backing = &types.VirtualDiskRawDiskMappingVer1BackingInfo{
			VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: flat.FileName, Datastore: flat.Datastore},
			LunUuid:                      "0200000000600508b1001c5e0c6e2f9f8f2a4f3a3c4c4f4749432d",
			DeviceName:                   "/vmfs/devices/disks/naa.600508b1001c5e0c6e2f9f8f2a4f3a3c",
			CompatibilityMode:            d.Rdm,
			DiskMode:                     mode,
			Sharing:                      flat.Sharing,
		}
		return nil
	}
	return fmt.Errorf("disk %d not found", key)
}
