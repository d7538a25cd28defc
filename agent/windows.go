package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Windows is what the registry says about a Windows guest.
type Windows struct {
	ProductName  string
	Edition      string
	Version      string // major.minor, e.g. 10.0
	Build        string
	DisplayName  string // e.g. 23H2
	Installation string // Client or Server
	ComputerName string
	Hostname     string
}

var windowsHives = struct{ software, system string }{`Windows\System32\config\SOFTWARE`, `Windows\System32\config\SYSTEM`}

// errNotWindows: the volume holds no SOFTWARE hive where Windows keeps it.
var errNotWindows = errors.New("no Windows registry")

// readWindows reads the SOFTWARE and SYSTEM hives through read (which finds a path case-insensitively, as Windows
// does). Without SOFTWARE it is not Windows (errNotWindows); without SYSTEM it is, but nameless.
func readWindows(read func(path string) ([]byte, error)) (*Windows, error) {
	sw, err := read(windowsHives.software)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotWindows, err)
	}
	hive, err := OpenHive(sw)
	if err != nil {
		return nil, fmt.Errorf("SOFTWARE: %w", err)
	}
	cv, err := hive.Key(`Microsoft\Windows NT\CurrentVersion`)
	if err != nil {
		return nil, fmt.Errorf("SOFTWARE: %w", err)
	}
	w := &Windows{}
	w.ProductName, _ = cv.String("ProductName")
	w.Edition, _ = cv.String("EditionID")
	w.DisplayName, _ = cv.String("DisplayVersion")
	w.Installation, _ = cv.String("InstallationType")
	if w.Build, _ = cv.String("CurrentBuildNumber"); w.Build == "" {
		w.Build, _ = cv.String("CurrentBuild")
	}
	// Windows 10 and later keep 6.3 in CurrentVersion for old programs' sake; the real numbers are DWORDs.
	if major, err := cv.DWORD("CurrentMajorVersionNumber"); err == nil {
		minor, _ := cv.DWORD("CurrentMinorVersionNumber")
		w.Version = fmt.Sprintf("%d.%d", major, minor)
	} else {
		w.Version, _ = cv.String("CurrentVersion")
	}
	// Windows 11 still calls itself "Windows 10" in ProductName; its build number tells them apart.
	if build, err := strconv.Atoi(w.Build); err == nil && build >= 22000 && strings.HasPrefix(w.ProductName, "Windows 10") {
		w.ProductName = "Windows 11" + strings.TrimPrefix(w.ProductName, "Windows 10")
	}
	if sysData, err := read(windowsHives.system); err == nil {
		if sys, err := OpenHive(sysData); err == nil {
			w.ComputerName, w.Hostname = computerNames(sys)
		}
	}
	return w, nil
}

// computerNames reads the NetBIOS computer name and the TCP/IP host name of the control set the machine booted last.
func computerNames(sys *Hive) (string, string) {
	set := uint32(1)
	if sel, err := sys.Key("Select"); err == nil {
		if cur, err := sel.DWORD("Current"); err == nil && cur > 0 {
			set = cur
		}
	}
	cs := fmt.Sprintf("ControlSet%03d", set)
	var computer, host string
	if k, err := sys.Key(cs + `\Control\ComputerName\ComputerName`); err == nil {
		computer, _ = k.String("ComputerName")
	}
	if k, err := sys.Key(cs + `\Services\Tcpip\Parameters`); err == nil {
		host, _ = k.String("Hostname")
	}
	return computer, host
}

// isNTFS: the OEM ID of an NTFS boot sector.
func isNTFS(head []byte) bool { return len(head) >= 11 && string(head[3:11]) == "NTFS    " }

// ntfsReader reads files of an NTFS volume with ntfs-3g's ntfsls and ntfscat, which open the device read-only and
// never mount it: the kernel the ISO boots has no NTFS driver, and nothing here replays NTFS's journal.
func ntfsReader(dev string) func(path string) ([]byte, error) {
	run := func(args ...string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("%s: %v: %s", args[0], err, strings.TrimSpace(stderr.String()))
		}
		return out, nil
	}
	return func(path string) ([]byte, error) {
		exact := ""
		for _, part := range strings.Split(strings.Trim(path, `\`), `\`) {
			dir := exact
			if dir == "" {
				dir = "/"
			}
			list, err := run("ntfsls", "-f", "-a", "-p", dir, dev)
			if err != nil {
				return nil, err
			}
			found := ""
			for _, name := range strings.Split(string(list), "\n") {
				if strings.EqualFold(strings.TrimSpace(name), part) {
					found = strings.TrimSpace(name)
					break
				}
			}
			if found == "" {
				return nil, fmt.Errorf("%s: no %s", dev, path)
			}
			exact += "/" + found
		}
		return run("ntfscat", "-f", dev, exact)
	}
}

// dirReader reads files below a mounted root, matching each path part case-insensitively.
func dirReader(root string) func(path string) ([]byte, error) {
	return func(path string) ([]byte, error) {
		at := root
		for _, part := range strings.Split(strings.Trim(path, `\`), `\`) {
			entries, err := os.ReadDir(at)
			if err != nil {
				return nil, err
			}
			next := ""
			for _, e := range entries {
				if strings.EqualFold(e.Name(), part) {
					next = filepath.Join(at, e.Name())
					break
				}
			}
			if next == "" {
				return nil, fmt.Errorf("no %s", path)
			}
			at = next
		}
		return os.ReadFile(at)
	}
}

func (g *GuestOS) setWindows(w *Windows) {
	g.Type, g.Distro, g.Version, g.PrettyName = "windows", "windows", w.Version, w.ProductName
	g.ProductName, g.Edition, g.Build, g.ComputerName = w.ProductName, w.Edition, w.Build, w.ComputerName
	g.DisplayVersion, g.InstallationType = w.DisplayName, w.Installation
	g.Hostname = w.Hostname
	if g.Hostname == "" {
		g.Hostname = w.ComputerName
	}
}
