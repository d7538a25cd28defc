package main

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// extendedVM serves SOAP methods that the stock simulator.VirtualMachine lacks
// (e.g. QueryChangedDiskAreas for Changed Block Tracking, to come). The
// simulator dispatches by reflection on the handler object: a method named
// after the SOAP method, taking (*simulator.Context, *types.<Method>) and
// returning soap.HasFault, is found on this type; every other method falls
// through to the embedded VirtualMachine.
type extendedVM struct {
	*simulator.VirtualMachine
}

// vmMethods lists the SOAP methods extendedVM adds or overrides.
var vmMethods = map[string]bool{}

// installExtensions routes vmMethods to extendedVM through the registry's
// per-request Handler hook. Unlike re-Put-ting a wrapper into the registry
// (example_extend_test.go), this keeps the stored object a
// *simulator.VirtualMachine, which simulator internals type-assert.
func installExtensions(model *simulator.Model) {
	model.Map().Handler = func(ctx *simulator.Context, m *simulator.Method) (mo.Reference, types.BaseMethodFault) {
		if !vmMethods[m.Name] {
			return nil, nil
		}
		if vm, ok := ctx.Map.Get(m.This).(*simulator.VirtualMachine); ok {
			return &extendedVM{vm}, nil
		}
		return nil, nil
	}
}
