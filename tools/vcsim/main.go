// Command vcsim runs govmomi's vCenter simulator (VPX model) with the VMs of a
// JSON spec, for vmigrate's tests, demo and benches.
//
// Why our own program instead of govmomi's vcsim binary: `go install
// .../vcsim@v0.56.0` is impossible (vcsim is a separate module with a replace
// directive), the stock binary cannot place named VMs with given disks, and we
// need hooks the CLI lacks (datastore dir, sparse -flat.vmdk sizing, Changed
// Block Tracking with frozen snapshot copies, ShutdownGuest modes: see
// extend.go and cbt.go; test fault injection with -test-hooks: testhooks.go).
//
// Protocol with the launcher (launch.ts): exactly one JSON line on stdout once
// the server accepts requests; logs go to stderr; SIGTERM/SIGINT exit 0.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmware/govmomi/simulator"
)

const (
	datacenterName = "DC0"
	datastoreName  = "LocalDS_0"
)

// readyLine is the single JSON line printed on stdout when the simulator is up.
type readyLine struct {
	URL          string    `json:"url"`
	Datacenter   string    `json:"datacenter"`
	Datastore    string    `json:"datastore"`
	DatastoreDir string    `json:"datastoreDir"`
	VMs          []vmReady `json:"vms"`
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (port 0 picks a free port)")
	username := flag.String("username", "", "only this user may log in (default: any non-empty user/password)")
	password := flag.String("password", "", "password for -username")
	useTLS := flag.Bool("tls", true, "serve https with a self-signed certificate, like a real vCenter")
	specPath := flag.String("spec", "", "JSON file describing the VMs to create")
	dsDir := flag.String("datastore-dir", "", "directory holding LocalDS_0's files (default: a temp dir removed on exit)")
	stdinExit := flag.Bool("stdin-exit", false, "exit when stdin reaches EOF (so the simulator dies with its parent)")
	testHooks := flag.Bool("test-hooks", false, "enable TEST FAULT INJECTION routes (POST /vmigrate-test/...; see testhooks.go)")
	flag.Parse()

	if err := run(*listen, *username, *password, *useTLS, *specPath, *dsDir, *stdinExit, *testHooks); err != nil {
		log.Printf("vcsim: %v", err)
		os.Exit(1)
	}
}

func run(listen, username, password string, useTLS bool, specPath, dsDir string, stdinExit, testHooks bool) error {
	spec := &simSpec{}
	if specPath != "" {
		var err error
		if spec, err = loadSpec(specPath); err != nil {
			return err
		}
	}
	if (username == "") != (password == "") {
		return fmt.Errorf("-username and -password must be given together")
	}

	// Catch signals from the start so a stop right after the ready line still
	// runs the cleanup (deferred Remove) and exits 0.
	done := make(chan os.Signal, 1)
	signal.Notify(done, syscall.SIGTERM, syscall.SIGINT)

	model := simulator.VPX()
	if spec.Datastores > 1 {
		model.Datastore = spec.Datastores
	}
	if err := model.Create(); err != nil {
		return fmt.Errorf("create model: %w", err)
	}
	defer model.Remove() // deletes the temp root (not a caller-given -datastore-dir)

	dir, err := relocateDatastore(model, datastoreName, dsDir)
	if err != nil {
		return err
	}

	model.Service.Listen = &url.URL{Host: listen}
	if username != "" {
		model.Service.Listen.User = url.UserPassword(username, password)
	}
	if useTLS {
		// An empty config makes the test server use Go's built-in self-signed
		// localhost certificate: clients must opt out of verification, as with
		// a stock vCenter.
		model.Service.TLS = new(tls.Config)
	}

	flats := newFlatFiles(dir)
	// Must be registered before NewServer, which adds the stock /folder/ route.
	mux := newMux(model.Service, flats)
	model.Service.ServeMux = mux
	ext := newExtensions(spec, datastoreDirs(model))
	installExtensions(model, ext)
	if testHooks {
		registerTestHooks(mux, model.Service, ext)
	}

	server := model.Service.NewServer()
	defer server.Close()

	// Create the spec VMs through the SOAP API of the running server, so they
	// go through exactly the code paths a real client would exercise.
	vms, err := createVMs(context.Background(), server.URL, spec, datastoreDirs(model), flats)
	if err != nil {
		return err
	}
	if err := decorateVMs(model, spec, vms); err != nil {
		return err
	}
	ext.registerVMs(spec, vms)

	u := *server.URL
	u.User = nil // never print credentials
	line, err := json.Marshal(readyLine{
		URL:          u.String(),
		Datacenter:   datacenterName,
		Datastore:    datastoreName,
		DatastoreDir: dir,
		VMs:          vms,
	})
	if err != nil {
		return err
	}
	fmt.Println(string(line))

	if stdinExit {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			done <- syscall.SIGTERM
		}()
	}
	<-done
	return nil
}
