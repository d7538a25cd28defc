module vmigrate/agent

go 1.22
