package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// examplePushd starts a pushd on 127.0.0.1 for an example and returns its
// URL and a function that stops it.
func examplePushd() (string, func()) {
	srv, err := server.New(server.Config{})
	if err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	return ts.URL, func() {
		_ = srv.Shutdown(context.Background())
		ts.Close()
	}
}

// Publish two messages, then read the room from its start.
func ExampleClient_Subscribe() {
	url, stop := examplePushd()
	defer stop()

	c, err := client.New(url, client.WithUser("alice"))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, text := range []string{"hello", "world"} {
		if _, err := c.Publish(ctx, "lobby", text); err != nil {
			log.Fatal(err)
		}
	}

	sub := c.Subscribe(ctx, client.Room("lobby"), client.SubscribeOptions{Since: "0"})
	defer sub.Close()
	for range 2 {
		ev, ok := <-sub.Events()
		if !ok {
			log.Fatal(sub.Err())
		}
		fmt.Println(ev.Seq, ev.Type, ev.User, ev.Text)
	}
	// Output:
	// 1 message alice hello
	// 2 message alice world
}

// Server errors are *protocol.Error values: branch on the code.
func ExampleClient_Publish_error() {
	url, stop := examplePushd()
	defer stop()

	c, err := client.New(url, client.WithUser("alice"))
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Publish(context.Background(), "lobby", "")
	var pe *protocol.Error
	if errors.As(err, &pe) {
		fmt.Println(pe.Status, pe.Code)
	}
	// Output:
	// 400 empty_text
}

// Start a demo task and wait for its end.
func ExampleClient_FollowTask() {
	url, stop := examplePushd()
	defer stop()

	c, err := client.New(url)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	task, err := c.StartTask(ctx, client.TaskSpec{Kind: "demo", Name: "example", Params: map[string]any{"total": 3, "interval": "10ms"}})
	if err != nil {
		log.Fatal(err)
	}
	final, err := c.FollowTask(ctx, task.ID, client.FollowOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %s, %d of %d\n", final.Name, final.State, final.Done, final.Total)
	// Output:
	// example: succeeded, 3 of 3
}

// Watch the connection state, here until the first connection works.
func ExampleSubscribeOptions_onState() {
	url, stop := examplePushd()
	defer stop()

	c, err := client.New(url)
	if err != nil {
		log.Fatal(err)
	}
	connected := make(chan struct{})
	sub := c.Subscribe(context.Background(), client.Room("lobby"), client.SubscribeOptions{
		OnState: func(sc client.StateChange) {
			fmt.Println(sc.State, sc.Transport)
			if sc.State == client.StateConnected {
				close(connected)
			}
		},
	})
	select {
	case <-connected:
	case <-sub.Done():
		log.Fatal(sub.Err())
	}
	sub.Close()
	// Output:
	// connecting ws
	// connected ws
	// closed
}
