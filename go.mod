module github.com/pushd/push

go 1.26.8

require (
	github.com/coder/websocket v1.8.15
	github.com/spf13/cobra v1.10.2
	go.etcd.io/bbolt v1.4.0
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
	golang.org/x/sys v0.29.0 // indirect
)
