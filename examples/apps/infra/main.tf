# A Terraform/OpenTofu application for Ferry's terraform target
# (docs/terraform.md). It uses only the built-in terraform_data resource, so
# it plans and applies without any provider download. State: Ferry's pg
# backend, one schema per environment (Ferry adds the backend block).

variable "environment" {
  type        = string
  description = "The Ferry environment (per-environment variable from ferry.yaml)."
}

variable "queue_size" {
  type    = number
  default = 10
}

variable "api_token" {
  type        = string
  sensitive   = true
  description = "A secret variable: from a secret source, never shown."
  default     = ""
}

# Stand-ins for real infrastructure: change an input, and the plan shows an
# update (terraform_data replaces nothing unless triggers_replace changes).
resource "terraform_data" "queue" {
  input = {
    name = "orders-${var.environment}"
    size = var.queue_size
  }
}

resource "terraform_data" "credentials" {
  input = var.api_token
}

resource "terraform_data" "release" {
  triggers_replace = [terraform_data.queue.output.name]
  input            = "deployed by Ferry to ${var.environment}"
}

output "queue" {
  value = terraform_data.queue.output.name
}
