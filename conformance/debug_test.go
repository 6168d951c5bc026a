package conformance

import (
	"log"
	"os"

	"github.com/IBM/sarama"
)

func init() {
	if os.Getenv("SARAMA_DEBUG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Lmicroseconds)
	}
}
