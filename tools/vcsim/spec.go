package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path"
	"strings"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// simSpec mirrors SimSpec in launch.ts.
type simSpec struct {
	VMs []vmSpec `json:"vms"`
	// Changed Block Tracking granularity (default 64 KiB) and the span one
	// QueryChangedDiskAreas answer covers (default 256 MiB); see cbt.go.
	CbtBlockSizeKiB int64 `json:"cbtBlockSizeKiB"`
	CbtWindowMiB    int64 `json:"cbtWindowMiB"`
	// Datastores in the model (default 1: LocalDS_0); disks may name LocalDS_1, ….
	Datastores int `json:"datastores"`
}

type vmSpec struct {
	Name                  string     `json:"name"`
	GuestID               string     `json:"guestId"`
	Firmware              string     `json:"firmware"` // bios | efi
	SecureBoot            bool       `json:"secureBoot"` // EFI only: bootOptions.efiSecureBootEnabled
	NumCPUs               int32      `json:"numCPUs"`
	MemoryMB              int64      `json:"memoryMB"`
	PowerState            string     `json:"powerState"` // poweredOn | poweredOff
	ChangeTrackingEnabled bool       `json:"changeTrackingEnabled"`
	Disks                 []diskSpec `json:"disks"`
	NICs                  []nicSpec  `json:"nics"`
	// ShutdownGuest behaviour: works (default) | ignored | tools-unavailable; see extend.go.
	GuestShutdown string `json:"guestShutdown"`
	// Placement: a host of the model (default DC0_H0; cluster hosts are DC0_C0_H0…) and a folder path under the
	// datacenter's VM folder ("prod/web"; created as needed).
	Host   string `json:"host"`
	Folder string `json:"folder"`
	// Snapshots taken after creation (their names: snap-1, snap-2, …).
	Snapshots int `json:"snapshots"`
	// What the guest reports about VMware Tools: running (default when powered on) | notRunning (default when off) |
	// notInstalled | old; see inventory.go.
	Tools string `json:"tools"`
	// Devices vSphere reports that vcsim does not model: pciPassthrough | sriovNic | tpm | usb.
	Devices []string `json:"devices"`
	// Fault tolerance protection (runtime.faultToleranceState running, a secondary configured).
	FaultTolerance bool `json:"faultTolerance"`
	// A template (config.template) rather than a VM.
	Template bool `json:"template"`
}

type diskSpec struct {
	CapacityMiB int64 `json:"capacityMiB"`
	Thick       bool  `json:"thick"` // default thin, like most VMs migrated
	// Datastore the disk lives on (default LocalDS_0).
	Datastore string `json:"datastore"`
	// Disk mode: persistent (default) | nonpersistent | undoable | independent_persistent | independent_nonpersistent | append.
	Mode string `json:"mode"`
	// Sharing: sharingNone (default) | sharingMultiWriter.
	Sharing string `json:"sharing"`
	// A raw device mapping instead of a flat file: physicalMode | virtualMode; see inventory.go.
	Rdm string `json:"rdm"`
}

type nicSpec struct {
	Network     string `json:"network"`
	// What the guest reports on this NIC (guest.net[].ipAddress), with VMware Tools running.
	IPAddresses []string `json:"ipAddresses"`
	AdapterType string `json:"adapterType"` // vmxnet3 (default) | e1000 | e1000e
	MacAddress  string `json:"macAddress"`  // optional; vcsim generates one otherwise
}

type vmReady struct {
	Name  string      `json:"name"`
	Moref string      `json:"moref"`
	Disks []diskReady `json:"disks"`
	NICs  []nicReady  `json:"nics"`
}

type diskReady struct {
	Key           int32  `json:"key"`
	Datastore     string `json:"datastore"`
	FileName      string `json:"fileName"`
	FlatPath      string `json:"flatPath"` // relative to the datastore dir
	CapacityBytes int64  `json:"capacityBytes"`
}

type nicReady struct {
	Key        int32  `json:"key"`
	MacAddress string `json:"macAddress"`
	Network    string `json:"network"`
}

func loadSpec(p string) (*simSpec, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var s simSpec
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields() // a typo in a test spec should fail loudly
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("spec %s: %w", p, err)
	}
	if s.CbtBlockSizeKiB < 0 || s.CbtWindowMiB < 0 {
		return nil, fmt.Errorf("spec %s: cbtBlockSizeKiB and cbtWindowMiB must not be negative (0 = default)", p)
	}
	seen := map[string]bool{}
	for i, vm := range s.VMs {
		if vm.Name == "" || strings.ContainsAny(vm.Name, "/[]") || seen[vm.Name] {
			return nil, fmt.Errorf("spec %s: vms[%d]: missing, duplicate or invalid name %q", p, i, vm.Name)
		}
		seen[vm.Name] = true
		switch vm.GuestShutdown {
		case "", "works", "ignored", "tools-unavailable":
		default:
			return nil, fmt.Errorf("spec %s: vm %s: guestShutdown must be works, ignored or tools-unavailable, not %q", p, vm.Name, vm.GuestShutdown)
		}
		for j, d := range vm.Disks {
			if d.CapacityMiB <= 0 {
				return nil, fmt.Errorf("spec %s: vm %s: disks[%d].capacityMiB must be > 0", p, vm.Name, j)
			}
			if !oneOf(d.Mode, "", "persistent", "nonpersistent", "undoable", "independent_persistent", "independent_nonpersistent", "append") ||
				!oneOf(d.Sharing, "", "sharingNone", "sharingMultiWriter") || !oneOf(d.Rdm, "", "physicalMode", "virtualMode") {
				return nil, fmt.Errorf("spec %s: vm %s: disks[%d]: unknown mode %q, sharing %q or rdm %q", p, vm.Name, j, d.Mode, d.Sharing, d.Rdm)
			}
		}
		if !oneOf(vm.Tools, "", "running", "notRunning", "notInstalled", "old") {
			return nil, fmt.Errorf("spec %s: vm %s: tools must be running, notRunning, notInstalled or old, not %q", p, vm.Name, vm.Tools)
		}
		for _, dev := range vm.Devices {
			if !oneOf(dev, "pciPassthrough", "sriovNic", "tpm", "usb") {
				return nil, fmt.Errorf("spec %s: vm %s: unknown device %q (pciPassthrough, sriovNic, tpm, usb)", p, vm.Name, dev)
			}
		}
		if vm.Snapshots < 0 {
			return nil, fmt.Errorf("spec %s: vm %s: snapshots must not be negative", p, vm.Name)
		}
	}
	return &s, nil
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// createVMs creates the spec VMs on their hosts (default DC0_H0) over SOAP, then sizes each disk's -flat.vmdk
// (vcsim creates it empty) to the disk capacity and takes the spec's snapshots.
func createVMs(ctx context.Context, u *url.URL, spec *simSpec, dsDirs map[string]string, flats *flatFiles) ([]vmReady, error) {
	out := []vmReady{}
	if len(spec.VMs) == 0 {
		return out, nil
	}
	c, err := govmomi.NewClient(ctx, u, true)
	if err != nil {
		return nil, fmt.Errorf("connect to self: %w", err)
	}
	defer func() { _ = c.Logout(ctx) }()

	finder := find.NewFinder(c.Client, false)
	dc, err := finder.Datacenter(ctx, datacenterName)
	if err != nil {
		return nil, err
	}
	finder.SetDatacenter(dc)
	folders, err := dc.Folders(ctx)
	if err != nil {
		return nil, err
	}

	for _, vs := range spec.VMs {
		folder, err := ensureFolder(ctx, finder, folders.VmFolder, vs.Folder)
		if err != nil {
			return nil, fmt.Errorf("vm %s: folder %q: %w", vs.Name, vs.Folder, err)
		}
		hostName := vs.Host
		if hostName == "" {
			hostName = "DC0_H0"
		}
		host, err := finder.HostSystem(ctx, hostName)
		if err != nil {
			return nil, fmt.Errorf("vm %s: host %q: %w", vs.Name, hostName, err)
		}
		pool, err := host.ResourcePool(ctx)
		if err != nil {
			return nil, err
		}
		ready, err := createVM(ctx, finder, folder, pool, host, vs, dsDirs)
		if err != nil {
			return nil, fmt.Errorf("create vm %s: %w", vs.Name, err)
		}
		for _, d := range ready.Disks {
			if d.Datastore == datastoreName {
				err = flats.set(d.FlatPath, d.CapacityBytes)
			} else {
				err = os.Truncate(path.Join(dsDirs[d.Datastore], d.FlatPath), d.CapacityBytes)
			}
			if err != nil {
				return nil, err
			}
		}
		vm := object.NewVirtualMachine(c.Client, types.ManagedObjectReference{Type: "VirtualMachine", Value: ready.Moref})
		for i := 1; i <= vs.Snapshots; i++ {
			task, err := vm.CreateSnapshot(ctx, fmt.Sprintf("snap-%d", i), "taken by the spec", false, false)
			if err == nil {
				err = task.Wait(ctx)
			}
			if err != nil {
				return nil, fmt.Errorf("vm %s: snapshot %d: %w", vs.Name, i, err)
			}
		}
		out = append(out, ready)
	}
	return out, nil
}

// ensureFolder returns the folder at rel ("a/b") under root, creating what is missing.
func ensureFolder(ctx context.Context, finder *find.Finder, root *object.Folder, rel string) (*object.Folder, error) {
	folder := root
	for _, name := range strings.Split(rel, "/") {
		if name == "" {
			continue
		}
		children, err := folder.Children(ctx)
		if err != nil {
			return nil, err
		}
		var next *object.Folder
		for _, ch := range children {
			if f, ok := ch.(*object.Folder); ok {
				if n, err := f.ObjectName(ctx); err == nil && n == name {
					next = f
				}
			}
		}
		if next == nil {
			if next, err = folder.CreateFolder(ctx, name); err != nil {
				return nil, err
			}
		}
		folder = next
	}
	return folder, nil
}

func createVM(ctx context.Context, finder *find.Finder, folder *object.Folder, pool *object.ResourcePool,
	host *object.HostSystem, vs vmSpec, dsDirs map[string]string) (vmReady, error) {
	config := types.VirtualMachineConfigSpec{
		Name:     vs.Name,
		GuestId:  vs.GuestID,
		Firmware: vs.Firmware,
		NumCPUs:  vs.NumCPUs,
		MemoryMB: vs.MemoryMB,
		Files:    &types.VirtualMachineFileInfo{VmPathName: "[" + datastoreName + "]"},
	}
	if config.GuestId == "" {
		config.GuestId = string(types.VirtualMachineGuestOsIdentifierOtherGuest)
	}
	// vCenter always reports bootOptions; efiSecureBootEnabled is what its "Secure Boot" checkbox sets.
	config.BootOptions = &types.VirtualMachineBootOptions{EfiSecureBootEnabled: types.NewBool(vs.SecureBoot)}
	if vs.ChangeTrackingEnabled {
		config.ChangeTrackingEnabled = types.NewBool(true)
	}

	var devices object.VirtualDeviceList
	scsi, err := devices.CreateSCSIController("pvscsi")
	if err != nil {
		return vmReady{}, err
	}
	// Device keys as vSphere numbers them (SCSI controller 1000, disks 2000+,
	// NICs 4000+) instead of vcsim's sequential ones, so tests see real shapes.
	scsi.GetVirtualDevice().Key = 1000
	scsi.GetVirtualDevice().DeviceInfo = &types.Description{Label: "SCSI controller 0"}
	devices = append(devices, scsi)
	for i, d := range vs.Disks {
		// Naming as vSphere does: <vm>/<vm>.vmdk, then <vm>/<vm>_1.vmdk, ...
		base := vs.Name
		if i > 0 {
			base = fmt.Sprintf("%s_%d", vs.Name, i)
		}
		dsName := d.Datastore
		if dsName == "" {
			dsName = datastoreName
		}
		ds, err := finder.Datastore(ctx, dsName)
		if err != nil {
			return vmReady{}, err
		}
		if dsName != datastoreName {
			// The VM's directory is made on its home datastore only; a disk elsewhere needs its own.
			dsDir, ok := dsDirs[dsName]
			if !ok {
				return vmReady{}, fmt.Errorf("no datastore %q (set datastores in the spec)", dsName)
			}
			if err := os.MkdirAll(path.Join(dsDir, vs.Name), 0o755); err != nil {
				return vmReady{}, err
			}
		}
		name := fmt.Sprintf("[%s] %s", dsName, path.Join(vs.Name, base+".vmdk"))
		disk := devices.CreateDisk(nil, ds.Reference(), name)
		disk.Key = int32(2000 + i) // set before AssignController, which records it on the controller
		disk.DeviceInfo = &types.Description{Label: fmt.Sprintf("Hard disk %d", i+1)}
		devices.AssignController(disk, scsi.(types.BaseVirtualController))
		disk.CapacityInKB = d.CapacityMiB * 1024
		backing := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if d.Thick {
			backing.ThinProvisioned = types.NewBool(false)
		}
		if d.Mode != "" {
			backing.DiskMode = d.Mode
		}
		if d.Sharing != "" {
			backing.Sharing = d.Sharing
		}
		devices = append(devices, disk)
	}
	for i, n := range vs.NICs {
		net, err := finder.Network(ctx, n.Network)
		if err != nil {
			return vmReady{}, err
		}
		backing, err := net.EthernetCardBackingInfo(ctx)
		if err != nil {
			return vmReady{}, err
		}
		kind := n.AdapterType
		if kind == "" {
			kind = "vmxnet3"
		}
		nic, err := devices.CreateEthernetCard(kind, backing)
		if err != nil {
			return vmReady{}, err
		}
		card := nic.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
		card.Key = int32(4000 + i)
		card.DeviceInfo = &types.Description{Label: fmt.Sprintf("Network adapter %d", i+1)}
		if n.MacAddress != "" {
			card.AddressType = string(types.VirtualEthernetCardMacTypeManual)
			card.MacAddress = n.MacAddress
		}
		devices = append(devices, nic)
	}

	config.DeviceChange, err = devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
	if err != nil {
		return vmReady{}, err
	}
	for _, change := range config.DeviceChange {
		spec := change.GetVirtualDeviceConfigSpec()
		if _, ok := spec.Device.(*types.VirtualDisk); ok {
			spec.FileOperation = types.VirtualDeviceConfigSpecFileOperationCreate
		}
	}

	task, err := folder.CreateVM(ctx, config, pool, host)
	if err != nil {
		return vmReady{}, err
	}
	info, err := task.WaitForResult(ctx, nil)
	if err != nil {
		return vmReady{}, err
	}
	vm := object.NewVirtualMachine(folder.Client(), info.Result.(types.ManagedObjectReference))

	if vs.PowerState == "" || vs.PowerState == string(types.VirtualMachinePowerStatePoweredOn) {
		task, err := vm.PowerOn(ctx)
		if err != nil {
			return vmReady{}, err
		}
		if err := task.Wait(ctx); err != nil {
			return vmReady{}, err
		}
	} else if vs.PowerState != string(types.VirtualMachinePowerStatePoweredOff) {
		return vmReady{}, fmt.Errorf("unsupported powerState %q", vs.PowerState)
	}

	ready, err := describeVM(ctx, vm, vs.Name)
	if err != nil {
		return vmReady{}, err
	}
	// Distributed port group backings carry a key, not a name: the spec has it.
	for i := range ready.NICs {
		if ready.NICs[i].Network == "" && i < len(vs.NICs) {
			ready.NICs[i].Network = vs.NICs[i].Network
		}
	}
	return ready, nil
}

// describeVM reports the devices as the server assigned them (keys, MACs).
func describeVM(ctx context.Context, vm *object.VirtualMachine, name string) (vmReady, error) {
	var mvm mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"config.hardware.device"}, &mvm); err != nil {
		return vmReady{}, err
	}
	ready := vmReady{Name: name, Moref: vm.Reference().Value, Disks: []diskReady{}, NICs: []nicReady{}}
	devices := object.VirtualDeviceList(mvm.Config.Hardware.Device)
	for _, dev := range devices {
		switch d := dev.(type) {
		case *types.VirtualDisk:
			b := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			var p object.DatastorePath
			if !p.FromString(b.FileName) {
				return vmReady{}, fmt.Errorf("unexpected backing file name %q", b.FileName)
			}
			ready.Disks = append(ready.Disks, diskReady{
				Key:           d.Key,
				Datastore:     p.Datastore,
				FileName:      b.FileName,
				FlatPath:      strings.TrimSuffix(p.Path, ".vmdk") + "-flat.vmdk",
				CapacityBytes: d.CapacityInKB * 1024,
			})
		case types.BaseVirtualEthernetCard:
			card := d.GetVirtualEthernetCard()
			nic := nicReady{Key: card.Key, MacAddress: card.MacAddress}
			if nb, ok := card.Backing.(*types.VirtualEthernetCardNetworkBackingInfo); ok {
				nic.Network = nb.DeviceName
			}
			ready.NICs = append(ready.NICs, nic)
		}
	}
	return ready, nil
}
