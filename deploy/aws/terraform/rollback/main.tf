# Roll deployments back when slo-agent's burn-rate alarm fires: a CloudWatch
# alarm on the SLO's fast burn (the BurnRate metric slo-agent exports with
# export.cloudwatch, over 5m and 1h, both above 14.4), watched by an ECS
# service's deployment (deployment alarms with rollback) and/or a CodeDeploy
# deployment group of a Lambda function (alarm configuration and automatic
# rollback). The same as ../../rollback-ecs.cfn.yaml and
# ../../rollback-codedeploy.cfn.yaml, as a module (source = "./deploy/aws/terraform/rollback").

terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
    }
  }
}

variable "slo_namespace" {
  type        = string
  description = "export.cloudwatch.namespace of the agent."
  default     = "SloAgent"
}

variable "slo_service" {
  type        = string
  description = "The SLO's service (the metric's Service dimension)."
}

variable "slo_name" {
  type        = string
  description = "The SLO's name (the metric's SLO dimension)."
}

variable "burn_rate_threshold" {
  type    = number
  default = 14.4
}

# ECS: set ecs_cluster to create the service.
variable "ecs_cluster" {
  type    = string
  default = ""
}

variable "ecs_task_definition" {
  type    = string
  default = ""
}

variable "ecs_subnets" {
  type    = list(string)
  default = []
}

variable "ecs_security_groups" {
  type    = list(string)
  default = []
}

# CodeDeploy (Lambda): set codedeploy to true to create the application and group.
variable "codedeploy" {
  type    = bool
  default = false
}

resource "aws_cloudwatch_metric_alarm" "fast_burn" {
  alarm_name          = "${var.slo_name}-fast-burn"
  alarm_description   = "${var.slo_name} burns its error budget over ${var.burn_rate_threshold}x in the last 5 minutes and the last hour (slo-agent BurnRate)."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.burn_rate_threshold
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  treat_missing_data  = "notBreaching"

  metric_query {
    id = "short"
    metric {
      namespace   = var.slo_namespace
      metric_name = "BurnRate"
      period      = 60
      stat        = "Maximum"
      dimensions = {
        Service = var.slo_service
        SLO     = var.slo_name
        Window  = "5m"
      }
    }
  }

  metric_query {
    id = "long"
    metric {
      namespace   = var.slo_namespace
      metric_name = "BurnRate"
      period      = 60
      stat        = "Maximum"
      dimensions = {
        Service = var.slo_service
        SLO     = var.slo_name
        Window  = "1h"
      }
    }
  }

  metric_query {
    id          = "burn"
    label       = "BurnRate over 5m and 1h (the smaller)"
    expression  = "MIN([short, long])"
    return_data = true
  }
}

resource "aws_ecs_service" "app" {
  count           = var.ecs_cluster == "" ? 0 : 1
  name            = var.slo_service
  cluster         = var.ecs_cluster
  task_definition = var.ecs_task_definition
  desired_count   = 2
  launch_type     = "FARGATE"

  network_configuration {
    subnets          = var.ecs_subnets
    security_groups  = var.ecs_security_groups
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  alarms {
    alarm_names = [aws_cloudwatch_metric_alarm.fast_burn.alarm_name]
    enable      = true
    rollback    = true
  }
}

resource "aws_iam_role" "codedeploy" {
  count = var.codedeploy ? 1 : 0
  name  = "${var.slo_service}-codedeploy"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "codedeploy.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "codedeploy" {
  count      = var.codedeploy ? 1 : 0
  role       = aws_iam_role.codedeploy[0].name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSCodeDeployRoleForLambdaLimited"
}

resource "aws_codedeploy_app" "app" {
  count            = var.codedeploy ? 1 : 0
  name             = var.slo_service
  compute_platform = "Lambda"
}

resource "aws_codedeploy_deployment_group" "app" {
  count                  = var.codedeploy ? 1 : 0
  app_name               = aws_codedeploy_app.app[0].name
  deployment_group_name  = var.slo_service
  service_role_arn       = aws_iam_role.codedeploy[0].arn
  deployment_config_name = "CodeDeployDefault.LambdaCanary10Percent5Minutes"

  deployment_style {
    deployment_type   = "BLUE_GREEN"
    deployment_option = "WITH_TRAFFIC_CONTROL"
  }

  alarm_configuration {
    enabled = true
    alarms  = [aws_cloudwatch_metric_alarm.fast_burn.alarm_name]
  }

  auto_rollback_configuration {
    enabled = true
    events  = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]
  }
}

output "alarm_name" {
  value = aws_cloudwatch_metric_alarm.fast_burn.alarm_name
}
