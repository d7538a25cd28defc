package main

import (
	"encoding/json"
	"fmt"
	"os"
)

// Config is what the ISO carries (/etc/vmigrate-agent.json): where to enroll and how to trust it.
type Config struct {
	// APIURL is the enrollment endpoint's base, e.g. https://vmigrate.example:8443.
	APIURL string `json:"apiUrl"`
	// APIFingerprint is the SHA-256 of the endpoint's certificate (DER, hex): the only certificate trusted.
	APIFingerprint string `json:"apiFingerprint"`
	// EnrollmentKey authorizes this ISO's agents to create migrations from its template.
	EnrollmentKey string `json:"enrollmentKey"`
	TemplateID    string `json:"templateId"`
}

func loadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the agent configuration %s: %w", path, err)
	}
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("the agent configuration %s is not valid JSON: %w", path, err)
	}
	if c.APIURL == "" || c.EnrollmentKey == "" {
		return nil, fmt.Errorf("the agent configuration %s lacks apiUrl or enrollmentKey", path)
	}
	return &c, nil
}
