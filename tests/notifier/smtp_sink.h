#pragma once

#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/concurrency/mutex.h"

namespace ferry::testing {

// A minimal SMTP receiver on 127.0.0.1 for tests (RFC 5321's commands
// EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; no TLS, no AUTH): every
// message it accepts is kept with its envelope. Python's smtpd is gone
// since 3.12, hence this one.
class SmtpSink {
 public:
  struct Mail {
    std::string from;
    std::vector<std::string> to;
    std::string data;  // the message as received, dot-unstuffed, without the final "."
  };
  SmtpSink();  // listens on a free port
  ~SmtpSink();
  int port() const { return port_; }
  std::vector<Mail> Mails() const;
  // The next `n` messages are refused after their DATA with `reply` (e.g.
  // "451 4.3.0 try again later", a transient failure) and not kept.
  void FailNext(int n, const std::string& reply);

 private:
  void Serve();
  void Session(int fd);

  int listen_fd_ = -1;
  int port_ = 0;
  mutable Mutex mu_;
  std::vector<Mail> mails_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int fail_next_ ABSL_GUARDED_BY(mu_) = 0;
  std::string fail_reply_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace ferry::testing
