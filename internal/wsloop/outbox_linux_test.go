package wsloop

func outboxOf(c Conn) *Outbox { return c.(*epollConn).out }
