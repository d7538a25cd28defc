package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// extendedVM serves SOAP methods that the stock simulator.VirtualMachine lacks
// or that we make behave more like vSphere: Changed Block Tracking
// (QueryChangedDiskAreas, change ids, frozen snapshot copies; see cbt.go) and
// ShutdownGuest modes. The simulator dispatches by reflection on the handler
// object: a method named after the SOAP method, taking
// (*simulator.Context, *types.<Method>) and returning soap.HasFault, is found
// on this type; every other method falls through to the embedded
// VirtualMachine.
type extendedVM struct {
	*simulator.VirtualMachine
	ext *extensions
}

// extendedSnapshot does the same for VirtualMachineSnapshot objects.
type extendedSnapshot struct {
	*simulator.VirtualMachineSnapshot
	ext *extensions
}

// vmMethods lists the SOAP methods extendedVM adds or overrides.
var vmMethods = map[string]bool{
	"ReconfigVM_Task":         true,
	"CreateSnapshot_Task":     true,
	"CreateSnapshotEx_Task":   true,
	"RemoveAllSnapshots_Task": true,
	"QueryChangedDiskAreas":   true,
	"ShutdownGuest":           true,
}

// snapshotMethods lists the SOAP methods extendedSnapshot overrides.
var snapshotMethods = map[string]bool{
	"RemoveSnapshot_Task": true,
}

// installExtensions routes vmMethods to extendedVM (and snapshotMethods to
// extendedSnapshot) through the registry's per-request Handler hook. Unlike
// re-Put-ting a wrapper into the registry (example_extend_test.go), this
// keeps the stored object a *simulator.VirtualMachine, which simulator
// internals type-assert.
//
// A catch in Service.call (simulator.go, v0.56.0): after the hook, a request
// with a session replaces the handler with session.Get(method.This), which
// falls back to the global registry, i.e. the stock object. So the hook also
// points method.This at a reference that resolves to nothing: session.Get
// then returns nil and our handler stays. Nothing after that lookup reads
// method.This (the method body keeps its own _this, which the methods use);
// only ctx.Caller points at it, and nothing reads that.
func installExtensions(model *simulator.Model, ext *extensions) {
	model.Map().Handler = func(ctx *simulator.Context, m *simulator.Method) (mo.Reference, types.BaseMethodFault) {
		var h mo.Reference
		switch {
		case vmMethods[m.Name]:
			if vm, ok := ctx.Map.Get(m.This).(*simulator.VirtualMachine); ok {
				h = &extendedVM{vm, ext}
			}
		case snapshotMethods[m.Name]:
			if s, ok := ctx.Map.Get(m.This).(*simulator.VirtualMachineSnapshot); ok {
				h = &extendedSnapshot{s, ext}
			}
		}
		if h != nil {
			m.This = types.ManagedObjectReference{Type: m.This.Type, Value: "vmigrate-extension:" + m.This.Value}
		}
		return h, nil
	}
}

// chainTask returns the task the caller waits on: it completes once the
// stock method's task (inner) has completed and then() has run, so a client
// that sees success also sees our additions (frozen copies, change ids).
// Both tasks hold the entity's lock on behalf of the same request context,
// so the VM is not changed by anyone else in between.
func chainTask(ctx *simulator.Context, entity types.ManagedObjectReference, name string, inner types.ManagedObjectReference,
	then func(result types.AnyType) (types.AnyType, types.BaseMethodFault)) types.ManagedObjectReference {
	task := simulator.CreateTask(entity, name, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		t, ok := ctx.Map.Get(inner).(*simulator.Task)
		if !ok {
			return nil, &types.SystemError{Reason: "inner task " + inner.Value + " not found"}
		}
		t.Wait()
		if t.Info.State != types.TaskInfoStateSuccess {
			if t.Info.Error != nil && t.Info.Error.Fault != nil {
				return nil, t.Info.Error.Fault
			}
			return nil, &types.SystemError{Reason: "inner task " + inner.Value + " failed"}
		}
		return then(t.Info.Result)
	})
	return task.Run(ctx)
}

func isTracking(vm *simulator.VirtualMachine) bool {
	return vm.Config != nil && vm.Config.ChangeTrackingEnabled != nil && *vm.Config.ChangeTrackingEnabled
}

// ReconfigVMTask: a spec setting changeTrackingEnabled is applied by the stock
// implementation (which flips config.changeTrackingEnabled), then our CBT
// state follows: off → on starts a new epoch (fresh uuid; change ids of the
// old epoch are refused from then on), on → off forgets the epoch. Specs
// without changeTrackingEnabled go to the stock implementation untouched.
func (x *extendedVM) ReconfigVMTask(ctx *simulator.Context, req *types.ReconfigVM_Task) soap.HasFault {
	if req.Spec.ChangeTrackingEnabled == nil {
		return x.VirtualMachine.ReconfigVMTask(ctx, req)
	}
	// Read before the stock task starts: its goroutine shares this request's
	// lock on the VM, so it may apply the spec at once.
	vm := x.VirtualMachine
	before, want := isTracking(vm), *req.Spec.ChangeTrackingEnabled
	body := vm.ReconfigVMTask(ctx, req).(*methods.ReconfigVM_TaskBody)
	if body.Fault_ != nil || body.Res == nil {
		return body
	}
	body.Res.Returnval = chainTask(ctx, vm.Self, "reconfigVm", body.Res.Returnval, func(types.AnyType) (types.AnyType, types.BaseMethodFault) {
		if want == before {
			return nil, nil
		}
		x.ext.mu.Lock()
		st := x.ext.stateLocked(vm.Self.Value)
		if want {
			st.resetLocked(newEpochUUID())
		} else {
			st.resetLocked("")
		}
		x.ext.mu.Unlock()
		// The live disks' change ids belonged to the old epoch.
		for _, dev := range vm.Config.Hardware.Device {
			if d, ok := dev.(*types.VirtualDisk); ok {
				if b, ok := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
					b.ChangeId = ""
				}
			}
		}
		ctx.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: vm.Config.Hardware.Device}})
		return nil, nil
	})
	return body
}

// CreateSnapshotTask lets the stock implementation create the snapshot
// object, then freezes a copy of each disk (see freezeSnapshot).
func (x *extendedVM) CreateSnapshotTask(ctx *simulator.Context, req *types.CreateSnapshot_Task) soap.HasFault {
	body := x.VirtualMachine.CreateSnapshotTask(ctx, req).(*methods.CreateSnapshot_TaskBody)
	if body.Fault_ != nil || body.Res == nil {
		return body
	}
	body.Res.Returnval = x.afterSnapshot(ctx, body.Res.Returnval)
	return body
}

// CreateSnapshotExTask: as CreateSnapshotTask.
func (x *extendedVM) CreateSnapshotExTask(ctx *simulator.Context, req *types.CreateSnapshotEx_Task) soap.HasFault {
	body := x.VirtualMachine.CreateSnapshotExTask(ctx, req).(*methods.CreateSnapshotEx_TaskBody)
	if body.Fault_ != nil || body.Res == nil {
		return body
	}
	body.Res.Returnval = x.afterSnapshot(ctx, body.Res.Returnval)
	return body
}

func (x *extendedVM) afterSnapshot(ctx *simulator.Context, inner types.ManagedObjectReference) types.ManagedObjectReference {
	vm := x.VirtualMachine
	return chainTask(ctx, vm.Self, "createSnapshot", inner, func(result types.AnyType) (types.AnyType, types.BaseMethodFault) {
		ref, ok := result.(types.ManagedObjectReference)
		if !ok {
			return nil, &types.SystemError{Reason: fmt.Sprintf("snapshot task returned %T", result)}
		}
		if fault := x.ext.freezeSnapshot(ctx, vm, ref); fault != nil {
			return nil, fault
		}
		return ref, nil
	})
}

// freezeSnapshot gives a new snapshot its own point-in-time disks: for each
// flat disk, a sparse copy of the live -flat.vmdk as <disk>-snap-<n>-flat.vmdk
// (with a descriptor <disk>-snap-<n>.vmdk) in the disk's directory, which the
// stock /folder route serves. The snapshot's backing fileName points at it,
// as on vSphere where a snapshot's backing is the frozen base file. With
// tracking on, snapshot and live disks get changeId "<epoch>/<seq>" and the
// frozen copy's block digests are kept under that change id.
func (e *extensions) freezeSnapshot(ctx *simulator.Context, vm *simulator.VirtualMachine, ref types.ManagedObjectReference) types.BaseMethodFault {
	snap, ok := ctx.Map.Get(ref).(*simulator.VirtualMachineSnapshot)
	if !ok {
		return &types.ManagedObjectNotFound{Obj: ref}
	}
	tracking := isTracking(vm)

	e.mu.Lock()
	st := e.stateLocked(vm.Self.Value)
	st.ensureEpochLocked(tracking)
	st.snapCounter++
	n := st.snapCounter
	changeID := ""
	if tracking {
		st.seq++
		changeID = fmt.Sprintf("%s/%d", st.epoch, st.seq)
	}
	e.mu.Unlock()

	ss := &snapState{changeID: changeID, disks: map[int32]string{}}
	digests := map[int32]*diskDigests{}
	fail := func(err error, file string) types.BaseMethodFault {
		for _, f := range ss.files {
			_ = os.Remove(f)
		}
		return &types.FileFault{VimFault: types.VimFault{MethodFault: types.MethodFault{
			FaultMessage: []types.LocalizableMessage{{Key: "vmigrate.vcsim.snapshot", Message: err.Error()}},
		}}, File: file}
	}
	for _, dev := range snap.Config.Hardware.Device {
		disk, ok := dev.(*types.VirtualDisk)
		if !ok {
			continue
		}
		b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if !ok {
			continue
		}
		end := strings.Index(b.FileName, "]")
		if end < 0 {
			return fail(fmt.Errorf("unexpected backing file name %q", b.FileName), b.FileName)
		}
		ds, rel := b.FileName[:end+1], strings.TrimSpace(b.FileName[end+1:])
		descriptor := fmt.Sprintf("%s %s-snap-%d.vmdk", ds, strings.TrimSuffix(rel, ".vmdk"), n)
		live, err := e.localPath(flatOf(b.FileName))
		if err != nil {
			return fail(err, b.FileName)
		}
		frozenDesc, err := e.localPath(descriptor)
		if err != nil {
			return fail(err, descriptor)
		}
		frozenFlat, _ := e.localPath(flatOf(descriptor))
		capacity := diskCapacity(disk)
		ss.files = append(ss.files, frozenFlat, frozenDesc)
		if err := sparseCopy(live, frozenFlat, capacity); err != nil {
			return fail(err, b.FileName)
		}
		if err := os.WriteFile(frozenDesc, []byte(descriptorText(pathBase(frozenFlat), capacity)), 0o644); err != nil {
			return fail(err, descriptor)
		}
		ss.disks[disk.Key] = frozenFlat
		if tracking {
			d, err := e.digestBlocks(frozenFlat, capacity, 0, e.numBlocks(capacity))
			if err != nil {
				return fail(err, descriptor)
			}
			digests[disk.Key] = &diskDigests{capacity: capacity, blocks: d}
		}
		b.FileName = descriptor
		b.ChangeId = changeID
	}

	e.mu.Lock()
	if tracking && strings.HasPrefix(changeID, st.epoch+"/") {
		st.digests[changeID] = digests
	}
	st.snaps[ref.Value] = ss
	e.mu.Unlock()

	ctx.Update(snap, []types.PropertyChange{{Name: "config.hardware.device", Val: snap.Config.Hardware.Device}})
	if tracking {
		for _, dev := range vm.Config.Hardware.Device {
			if d, ok := dev.(*types.VirtualDisk); ok && digests[d.Key] != nil {
				if b, ok := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
					b.ChangeId = changeID
				}
			}
		}
		ctx.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: vm.Config.Hardware.Device}})
	}
	return nil
}

func pathBase(p string) string {
	return p[strings.LastIndexAny(p, `/\`)+1:]
}

// pruneSnapshots discards the frozen copies of snapshots no longer in the
// VM's snapshot tree. Their digests stay: the change ids remain queryable
// within their epoch, as on vSphere.
func (e *extensions) pruneSnapshots(vm *simulator.VirtualMachine) {
	live := map[string]bool{}
	if vm.Snapshot != nil {
		var walk func([]types.VirtualMachineSnapshotTree)
		walk = func(tree []types.VirtualMachineSnapshotTree) {
			for _, s := range tree {
				live[s.Snapshot.Value] = true
				walk(s.ChildSnapshotList)
			}
		}
		walk(vm.Snapshot.RootSnapshotList)
	}
	var files []string
	e.mu.Lock()
	st := e.stateLocked(vm.Self.Value)
	for ref, ss := range st.snaps {
		if !live[ref] {
			files = append(files, ss.files...)
			delete(st.snaps, ref)
		}
	}
	e.mu.Unlock()
	for _, f := range files {
		_ = os.Remove(f)
	}
}

// RemoveSnapshotTask: the stock implementation updates the tree, then the
// frozen copies of the removed snapshot(s) are deleted.
func (x *extendedSnapshot) RemoveSnapshotTask(ctx *simulator.Context, req *types.RemoveSnapshot_Task) soap.HasFault {
	vmRef := x.Vm
	body := x.VirtualMachineSnapshot.RemoveSnapshotTask(ctx, req).(*methods.RemoveSnapshot_TaskBody)
	if body.Fault_ != nil || body.Res == nil {
		return body
	}
	body.Res.Returnval = chainTask(ctx, vmRef, "removeSnapshot", body.Res.Returnval, func(types.AnyType) (types.AnyType, types.BaseMethodFault) {
		if vm, ok := ctx.Map.Get(vmRef).(*simulator.VirtualMachine); ok {
			x.ext.pruneSnapshots(vm)
		}
		return nil, nil
	})
	return body
}

// RemoveAllSnapshotsTask: as RemoveSnapshotTask, for every snapshot.
func (x *extendedVM) RemoveAllSnapshotsTask(ctx *simulator.Context, req *types.RemoveAllSnapshots_Task) soap.HasFault {
	vm := x.VirtualMachine
	body := vm.RemoveAllSnapshotsTask(ctx, req).(*methods.RemoveAllSnapshots_TaskBody)
	if body.Fault_ != nil || body.Res == nil {
		return body
	}
	body.Res.Returnval = chainTask(ctx, vm.Self, "removeAllSnapshots", body.Res.Returnval, func(types.AnyType) (types.AnyType, types.BaseMethodFault) {
		x.ext.pruneSnapshots(vm)
		return nil, nil
	})
	return body
}

var changeIDPattern = regexp.MustCompile(`^(.+)/(\d+)$`)

func qcdaFault(msg string, f types.BaseMethodFault) soap.HasFault {
	return &methods.QueryChangedDiskAreasBody{Fault_: simulator.Fault(msg, f)}
}

// invalidArgument is vSphere's fault for a bad parameter ("A specified
// parameter was not correct: <property>").
func invalidArgument(property, why string) soap.HasFault {
	return qcdaFault(fmt.Sprintf("A specified parameter was not correct: %s (%s)", property, why), &types.InvalidArgument{InvalidProperty: property})
}

// QueryChangedDiskAreas answers, like vSphere, one window at a time: the
// areas of [startOffset, min(capacity, startOffset+window)) whose bytes differ
// between the point of changeId and the snapshot (or the live disk when the
// snapshot is unset, which vSphere allows only for a powered-off VM).
// changeId "*" gives the allocated (non-zero) areas.
//
// Faults:
//   - tracking off, or a snapshot taken without tracking / in an older epoch:
//     FileFault on the disk's file (what vSphere reports for unusable CBT data);
//   - a change id from an older epoch (tracking was turned off and on since),
//     an unknown or malformed one: InvalidArgument, invalidProperty "changeId";
//   - startOffset < 0 or >= capacity: InvalidArgument "startOffset";
//   - unknown device key: InvalidArgument "deviceKey";
//   - unknown snapshot: ManagedObjectNotFound; another VM's: InvalidArgument "snapshot";
//   - snapshot unset while the VM is not powered off: InvalidPowerState.
func (x *extendedVM) QueryChangedDiskAreas(ctx *simulator.Context, req *types.QueryChangedDiskAreas) soap.HasFault {
	e, vm := x.ext, x.VirtualMachine

	var devices []types.BaseVirtualDevice
	if req.Snapshot != nil {
		snap, ok := ctx.Map.Get(*req.Snapshot).(*simulator.VirtualMachineSnapshot)
		if !ok {
			return qcdaFault(fmt.Sprintf("managed object not found: %s", *req.Snapshot), &types.ManagedObjectNotFound{Obj: *req.Snapshot})
		}
		if snap.Vm != vm.Self {
			return invalidArgument("snapshot", "the snapshot belongs to another virtual machine")
		}
		devices = snap.Config.Hardware.Device
	} else {
		if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
			return qcdaFault("The attempted operation cannot be performed in the current state (Powered on): changes against the current state need a powered-off virtual machine",
				&types.InvalidPowerState{RequestedState: types.VirtualMachinePowerStatePoweredOff, ExistingState: vm.Runtime.PowerState})
		}
		devices = vm.Config.Hardware.Device
	}
	var disk *types.VirtualDisk
	for _, dev := range devices {
		if d, ok := dev.(*types.VirtualDisk); ok && d.Key == req.DeviceKey {
			disk = d
		}
	}
	if disk == nil {
		return invalidArgument("deviceKey", fmt.Sprintf("no virtual disk with key %d", req.DeviceKey))
	}
	backing, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
	if !ok {
		return invalidArgument("deviceKey", "the simulator tracks flat disks only")
	}
	capacity := diskCapacity(disk)
	if req.StartOffset < 0 || req.StartOffset >= capacity {
		return invalidArgument("startOffset", fmt.Sprintf("%d is outside the disk (capacity %d)", req.StartOffset, capacity))
	}
	if !isTracking(vm) {
		return qcdaFault(fmt.Sprintf("Error caused by file %s: change tracking is not enabled on this virtual machine", backing.FileName),
			&types.FileFault{File: backing.FileName})
	}

	e.mu.Lock()
	st := e.stateLocked(vm.Self.Value)
	st.ensureEpochLocked(true)
	var old *diskDigests // nil: "*" (allocated areas)
	if req.ChangeId != "*" {
		m := changeIDPattern.FindStringSubmatch(req.ChangeId)
		byDisk := st.digests[req.ChangeId]
		switch {
		case m == nil:
			e.mu.Unlock()
			return invalidArgument("changeId", fmt.Sprintf("malformed change id %q", req.ChangeId))
		case m[1] != st.epoch:
			e.mu.Unlock()
			return invalidArgument("changeId", fmt.Sprintf("change id %q is from an earlier change tracking epoch (tracking was reset)", req.ChangeId))
		case byDisk == nil:
			e.mu.Unlock()
			return invalidArgument("changeId", fmt.Sprintf("unknown change id %q", req.ChangeId))
		}
		old = byDisk[req.DeviceKey] // a disk added since: its allocated areas
	}
	var cur *diskDigests
	if req.Snapshot != nil {
		ss := st.snaps[req.Snapshot.Value]
		if ss == nil || ss.changeID == "" || st.digests[ss.changeID][req.DeviceKey] == nil {
			e.mu.Unlock()
			return qcdaFault(fmt.Sprintf("Error caused by file %s: the snapshot has no change tracking data (taken with tracking off or before it was reset)", backing.FileName),
				&types.FileFault{File: backing.FileName})
		}
		cur = st.digests[ss.changeID][req.DeviceKey]
	}
	injected := takeInjectedFault(st, false)
	e.mu.Unlock()

	if injected == faultQuery {
		// TEST FAULT INJECTION (-test-hooks): a vCenter whose CBT data is unusable.
		return qcdaFault(fmt.Sprintf("Error caused by file %s: change tracking data invalid (vmigrate test fault injection)", backing.FileName),
			&types.FileFault{File: backing.FileName})
	}

	winStart, winEnd := req.StartOffset, min(capacity, req.StartOffset+e.window)
	b0, b1 := winStart/e.blockSize, (winEnd+e.blockSize-1)/e.blockSize
	var digests []digest
	if cur != nil {
		digests = cur.blocks[b0:min(b1, int64(len(cur.blocks)))]
	} else {
		live, err := e.localPath(flatOf(backing.FileName))
		if err == nil {
			digests, err = e.digestBlocks(live, capacity, b0, b1)
		}
		if err != nil {
			return qcdaFault(fmt.Sprintf("Error caused by file %s: %v", backing.FileName, err), &types.FileFault{File: backing.FileName})
		}
	}
	info := types.DiskChangeInfo{
		StartOffset: winStart,
		Length:      winEnd - winStart,
		ChangedArea: e.changedAreas(old, digests, b0, capacity, winStart, winEnd),
	}

	switch injected {
	case faultZeroLengthWindow:
		// TEST FAULT INJECTION: a window of length 0 before the end of the disk.
		info.Length, info.ChangedArea = 0, nil
	case faultAreaOutsideDisk:
		// TEST FAULT INJECTION: an area past the disk's capacity.
		info.ChangedArea = append(info.ChangedArea, types.DiskChangeExtent{Start: capacity, Length: e.blockSize})
	}
	return &methods.QueryChangedDiskAreasBody{Res: &types.QueryChangedDiskAreasResponse{Returnval: info}}
}

// ShutdownGuest follows the VM's spec option guestShutdown:
//   - "works" (default): the stock behaviour, which powers the VM off right
//     away (and, unlike vSphere, does not need VMware Tools);
//   - "ignored": succeeds but the guest never shuts down (a guest that
//     ignores the ACPI request), so callers' timeout + power-off fallback
//     can be tested;
//   - "tools-unavailable": fails with ToolsUnavailable, as vSphere does when
//     VMware Tools is not running.
//
// A VM that is not powered on gets InvalidPowerState in every mode.
func (x *extendedVM) ShutdownGuest(ctx *simulator.Context, req *types.ShutdownGuest) soap.HasFault {
	vm := x.VirtualMachine
	x.ext.mu.Lock()
	mode := x.ext.stateLocked(vm.Self.Value).shutdown
	x.ext.mu.Unlock()
	if mode == "" || mode == "works" || vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
		return vm.ShutdownGuest(ctx, req)
	}
	if mode == "tools-unavailable" {
		return &methods.ShutdownGuestBody{Fault_: simulator.Fault(
			"Cannot complete operation because VMware Tools is not running in this virtual machine.", &types.ToolsUnavailable{})}
	}
	return &methods.ShutdownGuestBody{Res: &types.ShutdownGuestResponse{}}
}
