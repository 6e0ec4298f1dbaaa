# The IAM role of slo-agent on EKS, for IRSA (a service account's web
# identity) and EKS Pod Identity. Its only permissions are the least-privilege
# policy that `slo-agent iam-policy --config agent.yaml` prints, read from
# policy_file (deploy/aws/README.md):
#
#   slo-agent iam-policy --config agent.yaml --account 123456789012 > policy.json
#
# A module:
#
#   module "slo_agent_role" {
#     source      = "./deploy/aws/terraform/role"
#     policy_file = "${path.root}/policy.json"
#     oidc_issuer = "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE"   # IRSA
#     cluster_name = "shop"                                         # Pod Identity
#   }

terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
    }
  }
}

variable "role_name" {
  type    = string
  default = "slo-agent"
}

variable "policy_file" {
  type        = string
  description = "The JSON file `slo-agent iam-policy --config agent.yaml` wrote."
}

variable "oidc_issuer" {
  type        = string
  description = "For IRSA: the cluster's OIDC issuer without https:// (oidc.eks.REGION.amazonaws.com/id/EXAMPLE); empty for EKS Pod Identity only."
  default     = ""
}

variable "cluster_name" {
  type        = string
  description = "For EKS Pod Identity: the cluster whose service account gets the role; empty for no association."
  default     = ""
}

variable "namespace" {
  type    = string
  default = "slo-agent"
}

variable "service_account" {
  type    = string
  default = "slo-agent"
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  oidc_provider_arn = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:oidc-provider/${var.oidc_issuer}"
}

data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "EksPodIdentity"
    effect  = "Allow"
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
  }

  dynamic "statement" {
    for_each = var.oidc_issuer == "" ? [] : [var.oidc_issuer]
    content {
      sid     = "EksIrsa"
      effect  = "Allow"
      actions = ["sts:AssumeRoleWithWebIdentity"]
      principals {
        type        = "Federated"
        identifiers = [local.oidc_provider_arn]
      }
      condition {
        test     = "StringEquals"
        variable = "${statement.value}:sub"
        values   = ["system:serviceaccount:${var.namespace}:${var.service_account}"]
      }
      condition {
        test     = "StringEquals"
        variable = "${statement.value}:aud"
        values   = ["sts.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role" "slo_agent" {
  name               = var.role_name
  description        = "slo-agent (least privilege, from `slo-agent iam-policy`)"
  assume_role_policy = data.aws_iam_policy_document.trust.json
}

resource "aws_iam_role_policy" "slo_agent" {
  name   = "slo-agent"
  role   = aws_iam_role.slo_agent.id
  policy = file(var.policy_file)
}

resource "aws_eks_pod_identity_association" "slo_agent" {
  count           = var.cluster_name == "" ? 0 : 1
  cluster_name    = var.cluster_name
  namespace       = var.namespace
  service_account = var.service_account
  role_arn        = aws_iam_role.slo_agent.arn
}

output "role_arn" {
  description = "For IRSA: the service account's eks.amazonaws.com/role-arn annotation."
  value       = aws_iam_role.slo_agent.arn
}
