// Copyright The otelcol-failover Authors
// SPDX-License-Identifier: Apache-2.0

package failovergroupexporter

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// topicLimit is a topic whose max.message.bytes is below the member's
// record limit.
type topicLimit struct {
	topic string
	limit int
}

// setLogger makes the probe log with the member's logger (loggingProbe).
func (p *kafkaProbe) setLogger(l *zap.Logger) { p.logger = l }

// checkTopicLimits compares, once per probe, the max.message.bytes of the
// member's topics with its producer::max_message_bytes, and logs a warning
// for each topic that takes smaller records. Nothing is lost then: the
// group cuts a batch by the member's limit, the broker refuses a record over
// the topic's (MESSAGE_TOO_LARGE) and the group halves it until it fits,
// but every large record costs refused requests during an outage, when
// parking must be fast. Caught at start, by the standby's probe, it is fixed
// before an outage needs it.
//
// Brokers that give no answer are asked again at the next check; once they
// answered they are not asked again, even if they refused to describe a
// topic (an ACL without DescribeConfigs): the check is advice, not a
// condition of the member's health.
func (p *kafkaProbe) checkTopicLimits(ctx context.Context, cl *kgo.Client) {
	if p.recordLimit <= 0 || p.limitsChecked.Load() {
		return
	}
	below, err := p.topicsBelowLimit(ctx, cl)
	if err != nil {
		p.logger.Debug("Could not read the max.message.bytes of the member's topics", zap.Error(err))
		return
	}
	if !p.limitsChecked.CompareAndSwap(false, true) {
		return
	}
	for _, b := range below {
		p.logger.Warn("A topic of this kafka member takes smaller records than the member writes: records over the topic's limit are refused by the broker and parked in smaller parts, with more requests, during an outage; "+
			"raise the topic's max.message.bytes to at least producer::max_message_bytes, or lower producer::max_message_bytes to the topic's limit",
			zap.String("topic", b.topic), zap.Int("topic_max_message_bytes", b.limit), zap.Int("producer_max_message_bytes", p.recordLimit))
	}
}

// topicsBelowLimit asks the brokers for the member's topics'
// max.message.bytes and returns those below the member's record limit.
func (p *kafkaProbe) topicsBelowLimit(ctx context.Context, cl *kgo.Client) ([]topicLimit, error) {
	req := kmsg.NewPtrDescribeConfigsRequest()
	for _, t := range p.topics {
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType = kmsg.ConfigResourceTypeTopic
		r.ResourceName = t
		r.ConfigNames = []string{"max.message.bytes"}
		req.Resources = append(req.Resources, r)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	var below []topicLimit
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			p.logger.Debug("The brokers did not describe a topic of the member", zap.String("topic", r.ResourceName), zap.Error(err))
			continue
		}
		for _, c := range r.Configs {
			if c.Name != "max.message.bytes" || c.Value == nil {
				continue
			}
			if n, err := strconv.Atoi(*c.Value); err == nil && n < p.recordLimit {
				below = append(below, topicLimit{topic: r.ResourceName, limit: n})
			}
		}
	}
	return below, nil
}
