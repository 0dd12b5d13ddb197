// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import "errors"

// Configuration errors. Each says what is wrong and how to fix it; keyError
// puts the config key in front.
var (
	errNoMembers          = errors.New("at least one member is required, e.g. `members: [{clickhouse/live: {endpoint: ...}}, {kafka/dlq: {brokers: [...]}}]`")
	errMembersNotList     = errors.New("must be a list of members, each `- type[/name]: {config}`")
	errMemberShape        = errors.New("each member must be a map with one `type[/name]: {config}` key, optionally with the member option dead_letter next to it")
	errMemberConfigNotMap = errors.New("member config must be a map")
	errInvalidMemberID    = errors.New("invalid member id")
	errUnknownMemberType  = errors.New("unknown member type")
	errNestedGroup        = errors.New("a member cannot itself be a failover_group; list its members in this group instead")
	errDuplicateMember    = errors.New("duplicate member id")
	errAsyncMemberQueue   = errors.New("a member's asynchronous queue hides its failures from the group, which then never fails over; " +
		"remove the member's sending_queue (the group turns it off by default), set `sending_queue: {wait_for_result: true}`, " +
		"or put the queue on the group itself (failover_group `sending_queue`, with `storage` to survive restarts)")
	errNotABool          = errors.New("must be true or false")
	errNotPositive       = errors.New("must be positive")
	errBelowOne          = errors.New("must be at least 1")
	errNegative          = errors.New("must not be negative")
	errShorterThan       = errors.New("must not be shorter than")
	errLongerThan        = errors.New("must not be longer than")
	errNotBelow          = errors.New("must be shorter than")
	errOnPermanentError  = errors.New(`must be "next_member" or "return"`)
	errTimeoutBelowFloor = errors.New("shorter than the member can start with")
	errQueueWithoutRetry = errors.New("a group sending_queue needs retry_on_failure: without it a batch is dropped the first time every member fails; " +
		"remove `retry_on_failure: {enabled: false}` (with a queue the group retries until a member takes the data)")
	errWaitingQueueRetryUnbounded = errors.New("0 (retry forever) with sending_queue::wait_for_result: the clients wait for each batch's answer and send it again after their own timeout, " +
		"while the queue would still retry it: the data would be written twice; turn retry_on_failure off (the default with wait_for_result: a failure goes back to the clients, who keep the data) " +
		"or set max_elapsed_time below your clients' timeout")
	errQueueRetryBounded = errors.New("with a group sending_queue, a non-zero max_elapsed_time drops queued data once every member has been down that long; " +
		"remove it or set it to 0 (retry until a member takes the data), and bound memory with sending_queue::queue_size instead")
)

// keyError is a configuration error at one key.
type keyError struct {
	key string
	err error
}

func (e *keyError) Error() string { return e.key + ": " + e.err.Error() }
func (e *keyError) Unwrap() error { return e.err }

func atKey(key string, err error) error {
	if err == nil {
		return nil
	}
	return &keyError{key: key, err: err}
}
