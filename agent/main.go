// vmigrate-agent runs on a machine booted from vmigrate's ISO: it finds the machine's hardware and OS, enrolls it
// with the destination (a migration appears there), and serves each disk read-only over NBD through connections it
// opens itself, so the destination never needs to reach the source network. A reboot, booted from the same ISO,
// joins the same migration, and the copy resumes where it was.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"strings"
	"time"
)

const agentVersion = "1"

type diskFlags []string

func (d *diskFlags) String() string     { return strings.Join(*d, ",") }
func (d *diskFlags) Set(v string) error { *d = append(*d, v); return nil }

func main() {
	configPath := flag.String("config", "/etc/vmigrate-agent.json", "the agent configuration the ISO carries")
	var disks diskFlags
	flag.Var(&disks, "disk", "a disk image to serve instead of the machine's block devices (repeatable; outside the ISO)")
	machineUUID := flag.String("machine-uuid", "", "with -disk: the firmware UUID to report")
	connsPerDisk := flag.Int("connections", 4, "idle NBD connections kept open per disk")
	once := flag.Bool("discover", false, "print what was discovered as JSON and exit")
	maxRate := flag.Int64("max-rate", 0, "bytes per second the agent sends at most, over all disks (0: no limit)")
	flag.Parse()
	sendLimit.set(*maxRate)

	m := Machine{AgentVersion: agentVersion, BootID: randomHex(16)}
	m.CPU = discoverCPU()
	m.MemoryBytes = discoverMemory()
	m.Nics = discoverNics()
	m.Firmware = discoverFirmware()
	if len(disks) > 0 {
		d, err := fileDisks(disks)
		if err != nil {
			say("%v", err)
			os.Exit(2)
		}
		m.Disks = d
		m.FirmwareUUID = *machineUUID
		m.Guest = discoverGuestInFiles(m.Disks, m.Nics)
	} else {
		m.FirmwareUUID = readTrimmed("/sys/class/dmi/id/product_uuid")
		m.Disks = discoverDisks()
		m.Guest = discoverGuest(m.Disks, m.Nics)
	}
	if *once {
		out, _ := json.MarshalIndent(m, "", "  ")
		os.Stdout.Write(append(out, '\n'))
		return
	}
	say("this machine: %d socket(s) x %d core(s), %d MiB of memory, %d NIC(s), %d disk(s), firmware %s", m.CPU.Sockets, m.CPU.CoresPerSocket, m.MemoryBytes>>20, len(m.Nics), len(m.Disks), m.Firmware)
	for _, d := range m.Disks {
		say("disk %d: %s, %d bytes, model %q, serial %q (read-only)", d.Index, d.Name, d.SizeBytes, d.Model, d.Serial)
	}
	say("guest: %s %s %s, name %q", m.Guest.Type, m.Guest.Distro, m.Guest.Version, m.Guest.Name)
	for _, n := range m.Guest.Notes {
		say("note: %s", n)
	}
	if len(m.Disks) == 0 {
		say("no disks found: nothing to migrate")
	}

	cfg, err := loadConfig(*configPath)
	if err != nil {
		say("%v", err)
		os.Exit(2)
	}
	ctx := context.Background()
	delay := 5 * time.Second
	for {
		say("enrolling with %s", cfg.APIURL)
		e, err := enroll(ctx, cfg, &m)
		if err != nil {
			var refused *EnrollRefused
			if errors.As(err, &refused) {
				say("REFUSED: %s", refused.Error())
				say("check the template's enrollment key on the destination; trying again in %s", 30*time.Second)
				time.Sleep(30 * time.Second)
			} else {
				say("cannot reach the destination: %v; trying again in %s", err, delay)
				time.Sleep(delay)
			}
			continue
		}
		say("enrolled as machine %s: migration %s", e.MachineID, e.MigrationID)
		if e.Message != "" {
			say("%s", e.Message)
		}
		sendLimit.set(lowerLimit(*maxRate, e.MaxBytesPerSecond))
		if e.MaxBytesPerSecond > 0 {
			say("the template limits sending to %d Mbit/s", e.MaxBytesPerSecond*8/1_000_000)
		}
		err = runSession(ctx, cfg, e, &m, m.BootID, *connsPerDisk)
		say("session ended: %v; enrolling again in %s", err, delay)
		time.Sleep(delay)
	}
}
